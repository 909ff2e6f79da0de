package kafkaapi

import (
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropSASLTLS: kcat (librdkafka, SaslAuthenticate) and kafka-python
// 2.0 (SaslHandshake v0 and bare tokens) authenticate with PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 over TLS, produce and consume; a wrong
// password is refused. This one runs on bridge only: kfake advertises
// SaslHandshake v1 alone, and librdkafka refuses a broker without v0 in its
// range ("SASL Handshake not supported by broker") for every mechanism,
// while kafka-python 2.0 speaks only v0. franz-go's SASL is tested in
// auth_test.go.
func TestInteropSASLTLS(t *testing.T) {
	t.Parallel()
	tl := tools(t)
	serverTLS, _ := selfSigned(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverTLS.Certificates[0].Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, "", func(o *Options) { o.TLS = serverTLS; o.Credentials = testCredentials })
	mechs := []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	for _, tg := range []struct {
		name, addr string
		mechs      []string
		create     func(topic string)
	}{
		{"bridge", ts.addr, mechs, func(topic string) { ts.topic(topic, 1) }},
	} {
		t.Run(tg.name, func(t *testing.T) {
			for _, m := range tg.mechs {
				topic := "sasl-" + strings.ToLower(m)
				tg.create(topic)
				auth := []string{"-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + caFile, "-X", "sasl.mechanisms=" + m,
					"-X", "sasl.username=admin", "-X", "sasl.password=a-token"}
				cmd := exec.Command(tl.kcat, append([]string{"-P", "-b", tg.addr, "-t", topic}, auth...)...)
				cmd.Stdin = strings.NewReader("one\ntwo\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kcat %s produce: %v: %s", m, err, out)
				}
				out := runClient(t, tl, nil, tl.kcat, append([]string{"-C", "-b", tg.addr, "-t", topic, "-o", "beginning", "-e", "-q"}, auth...)...)
				sameStrings(t, "kcat "+m, lines(out), []string{"one", "two"})
				py := fmt.Sprintf(`
import kafka, sys
p = kafka.KafkaProducer(bootstrap_servers=%q, security_protocol="SASL_SSL", ssl_cafile=%q, ssl_check_hostname=False,
    sasl_mechanism=%q, sasl_plain_username="admin", sasl_plain_password="a-token")
p.send(%q, b"three").get(timeout=30)
p.close()
`, tg.addr, caFile, m, topic)
				runClient(t, tl, nil, tl.python, "-c", py)
				out = runClient(t, tl, nil, tl.kcat, append([]string{"-C", "-b", tg.addr, "-t", topic, "-o", "beginning", "-e", "-q"}, auth...)...)
				sameStrings(t, "kafka-python "+m, lines(out), []string{"one", "three", "two"})
			}
			{
				cmd := exec.Command(tl.kcat, "-L", "-b", tg.addr, "-m", "2", "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location="+caFile,
					"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin", "-X", "sasl.password=wrong")
				if out, err := cmd.CombinedOutput(); err == nil {
					t.Fatalf("kcat with a wrong password listed metadata: %s", out)
				}
			}
		})
	}
}
