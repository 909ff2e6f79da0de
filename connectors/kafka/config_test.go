package kafka

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/bridgeio/bridge/event"
)

const secret = "s3cr3t-Pa55word"

func TestClientConfigValidate(t *testing.T) {
	t.Parallel()
	ok := ClientConfig{Brokers: []string{"localhost:9092"}}
	cases := []struct {
		name string
		mod  func(*ClientConfig)
		want []string // substrings of the error; nil: valid
	}{
		{"minimal", func(*ClientConfig) {}, nil},
		{"full", func(c *ClientConfig) {
			c.ClientID = "x"
			c.TLS = &TLSConfig{CertFile: "c", KeyFile: "k"}
			c.SASL = &SASLConfig{Mechanism: MechanismSCRAMSHA512, Username: "u", Password: secret}
			c.DialTimeout, c.RequestTimeout = time.Second, time.Second
		}, nil},
		{"no brokers", func(c *ClientConfig) { c.Brokers = nil }, []string{"brokers"}},
		{"blank broker", func(c *ClientConfig) { c.Brokers = []string{"a:1", " "} }, []string{"brokers[1]"}},
		{"negative timeouts", func(c *ClientConfig) { c.DialTimeout, c.RequestTimeout = -1, -1 },
			[]string{"dial_timeout", "request_timeout"}},
		{"cert without key", func(c *ClientConfig) { c.TLS = &TLSConfig{CertFile: "c"} }, []string{"key_file"}},
		{"bad mechanism", func(c *ClientConfig) {
			c.SASL = &SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: secret}
		}, []string{`"GSSAPI"`}},
		{"missing credentials", func(c *ClientConfig) { c.SASL = &SASLConfig{Mechanism: MechanismPlain} },
			[]string{"sasl.username", "sasl.password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid config: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %s", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}

// TestSecretsNeverPrinted: the password is redacted however the config is
// printed or logged, and absent from config errors.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := ClientConfig{Brokers: []string{"b:1"},
		SASL: &SASLConfig{Mechanism: "WRONG", Username: "alice", Password: secret}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "sasl", *cfg.SASL, "client", cfg)
	_, srcErr := NewSource(SourceConfig{Client: cfg, Topics: []string{"t"}, Group: "g", Name: "n"})
	_, sinkErr := NewSink(SinkConfig{Client: cfg, Topic: "t"})
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"json":   string(asJSON),
		"%v":     fmt.Sprintf("%v", cfg),
		"%+v":    fmt.Sprintf("%+v", cfg),
		"%#v":    fmt.Sprintf("%#v", *cfg.SASL),
		"%s":     fmt.Sprintf("%s", *cfg.SASL), //lint:ignore S1025 the %s verb itself is what is tested
		"slog":   logged.String(),
		"source": fmt.Sprint(srcErr),
		"sink":   fmt.Sprint(sinkErr),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks the password: %s", name, out)
		}
	}
	if !strings.Contains(outputs["%+v"], "alice") || !strings.Contains(outputs["%+v"], redacted) {
		t.Errorf("%%+v lost the useful part: %s", outputs["%+v"])
	}
	if srcErr == nil || sinkErr == nil {
		t.Fatal("bad mechanism accepted")
	}
}

// TestSASLAgainstKfake authenticates each mechanism against a kfake cluster
// that requires SASL, and checks that a wrong password fails without
// echoing it.
func TestSASLAgainstKfake(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "alice", secret))
			for _, tc := range []struct {
				name     string
				password string
				ok       bool
			}{{"right password", secret, true}, {"wrong password", secret + "x", false}} {
				cfg := SinkConfig{Client: clientConfig(c), Topic: "out", DeliveryTimeout: 2 * time.Second}
				cfg.Client.SASL = &SASLConfig{Mechanism: mech, Username: "alice", Password: tc.password}
				// franz-go may still log from its own goroutines after Close.
				logged := &syncBuffer{}
				cfg.Logger = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
				sink, err := NewSink(cfg)
				if err != nil {
					t.Fatal(err)
				}
				err = sink.Send(context.Background(), []event.Event{{Value: []byte("v")}})
				_ = sink.Close(context.Background())
				if (err == nil) != tc.ok {
					t.Fatalf("%s: err = %v", tc.name, err)
				}
				if err != nil && strings.Contains(err.Error(), tc.password) {
					t.Fatalf("%s: error leaks the password: %v", tc.name, err)
				}
				if strings.Contains(logged.String(), secret) {
					t.Fatalf("%s: debug log leaks the password", tc.name)
				}
			}
		})
	}
}

// TestTLSAgainstKfake: a client trusting the cluster's CA (CAFile) connects;
// one with a missing CA file fails at Send with a config error; one trusting
// only the system roots fails the handshake.
func TestTLSAgainstKfake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, serverCert := writeTestCA(t, dir)
	c := newCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))

	cases := []struct {
		name    string
		tls     *TLSConfig
		wantErr error // nil: success; ErrConfig or any error (errAny)
	}{
		{"trusted CA", &TLSConfig{CAFile: caFile}, nil},
		{"missing CA file", &TLSConfig{CAFile: filepath.Join(dir, "nope.pem")}, ErrConfig},
		{"system roots", &TLSConfig{}, errAny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SinkConfig{Client: clientConfig(c), Topic: "out", DeliveryTimeout: 2 * time.Second}
			cfg.Client.TLS = tc.tls
			sink, err := NewSink(cfg)
			if err != nil {
				t.Fatal(err) // New does not read files
			}
			defer func() { _ = sink.Close(context.Background()) }()
			err = sink.Send(context.Background(), []event.Event{{Value: []byte("v")}})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("send: %v", err)
			case tc.wantErr == errAny && err == nil:
				t.Fatal("send succeeded without trusting the CA")
			case tc.wantErr == ErrConfig && !errors.Is(err, ErrConfig):
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

var errAny = errors.New("any error")

// writeTestCA writes a self-signed CA to dir/ca.pem and returns its path and
// a server certificate for 127.0.0.1 signed by it.
func writeTestCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
