// Command amqpgen writes package wire's generated codecs from the AMQP
// 0-9-1 specification XML (see package gen). Usage:
//
//	go run ./internal/gen/cmd/amqpgen -spec FILE -o FILE
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bridgeio/bridge/embedded-broker/amqpapi/internal/gen"
)

func main() {
	specPath := flag.String("spec", gen.DefaultSpec, "the AMQP 0-9-1 specification XML (Debian package amqp-specs)")
	out := flag.String("o", "spec_gen.go", "output file")
	flag.Parse()
	if err := run(*specPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "amqpgen:", err)
		os.Exit(1)
	}
}

func run(specPath, out string) error {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return fmt.Errorf("%w (install Debian's amqp-specs package)", err)
	}
	src, err := gen.Generate(data, specPath)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}
