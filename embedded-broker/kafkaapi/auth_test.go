package kafkaapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var testCredentials = []Credential{
	{Username: "producer", Password: "p-token", Role: RoleProducer},
	{Username: "consumer", Password: "c-token-1", Role: RoleConsumer},
	{Username: "consumer", Password: "c-token-2", Role: RoleConsumer},
	{Username: "admin", Password: "a-token", Role: RoleAdmin},
}

func mechanism(name, user, pass string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

// TestSASLRoles: each mechanism authenticates; the role decides what a
// client may do (producer produces, consumer fetches and uses groups);
// a wrong password or no SASL at all gets no service.
func TestSASLRoles(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", func(o *Options) { o.Credentials = testCredentials })
	ts.topic("t", 1)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			prod := ts.client(kgo.SASL(mechanism(mech, "producer", "p-token")), kgo.DefaultProduceTopic("t"))
			if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte(mech)}).FirstErr(); err != nil {
				t.Fatalf("producer produce: %v", err)
			}
			cons := ts.client(kgo.SASL(mechanism(mech, "consumer", "c-token-2")), kgo.ConsumeTopics("t"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ConsumerGroup("g-"+mech))
			if recs := consume(t, cons, 1, 10*time.Second); len(recs) == 0 {
				t.Fatal("consumer got nothing")
			}
			// The consumer role may not produce: no producer id (as Kafka
			// answers without idempotent-write permission), no append.
			denied := ts.client(kgo.SASL(mechanism(mech, "consumer", "c-token-1")), kgo.DefaultProduceTopic("t"), kgo.RequestRetries(0))
			err := denied.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("no")}).FirstErr()
			if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
				t.Fatalf("consumer idempotent produce: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
			}
			denied = ts.client(kgo.SASL(mechanism(mech, "consumer", "c-token-1")), kgo.DefaultProduceTopic("t"), kgo.RequestRetries(0),
				kgo.DisableIdempotentWrite())
			err = denied.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("no")}).FirstErr()
			if !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("consumer produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
			}
			// The producer role may not fetch.
			pf := ts.client(kgo.SASL(mechanism(mech, "producer", "p-token")), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			fs := pf.PollFetches(ctxT(t, 10*time.Second))
			if len(fs.Records()) != 0 {
				t.Fatal("the producer role fetched records")
			}
			if errs := fs.Errors(); len(errs) == 0 || !errors.Is(errs[0].Err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("producer fetch: %v, want TOPIC_AUTHORIZATION_FAILED", errs)
			}
			// A wrong password is refused.
			bad := ts.client(kgo.SASL(mechanism(mech, "consumer", "p-token")), kgo.DefaultProduceTopic("t"), kgo.RequestRetries(0))
			if err := bad.ProduceSync(ctxT(t, 2*time.Second), &kgo.Record{Value: []byte("no")}).FirstErr(); err == nil {
				t.Fatal("a wrong password produced")
			}
			if _, end, _ := ts.log.Offsets("t", 0); end > 3 {
				t.Fatalf("%d records in the topic: a refused client appended", end)
			}
		})
	}
	// Without SASL, nothing but ApiVersions is served.
	anon := ts.client(kgo.DefaultProduceTopic("t"), kgo.RequestRetries(0))
	if err := anon.ProduceSync(ctxT(t, 2*time.Second), &kgo.Record{Value: []byte("anon")}).FirstErr(); err == nil {
		t.Fatal("an unauthenticated client produced")
	}
}

func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bridge-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestTLSWithSASL: the listener over TLS (the buffered Fetch path) with
// SCRAM on top: produce and consume a compressed batch larger than one
// write.
func TestTLSWithSASL(t *testing.T) {
	t.Parallel()
	serverTLS, pool := selfSigned(t)
	ts := startServer(t, "", func(o *Options) { o.TLS = serverTLS; o.Credentials = testCredentials })
	ts.topic("t", 1)
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	cl := ts.client(kgo.DialTLSConfig(clientTLS), kgo.SASL(mechanism("SCRAM-SHA-512", "admin", "a-token")),
		kgo.DefaultProduceTopic("t"), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	var recs []*kgo.Record
	for i := range 2000 {
		recs = append(recs, &kgo.Record{Value: make([]byte, 100+i%50)})
	}
	if err := cl.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, cl, 2000, 20*time.Second); len(got) != 2000 {
		t.Fatalf("%d records over TLS, want 2000", len(got))
	}
	if st := ts.srv.Stats(); st.FetchBytesBuffered == 0 || st.FetchBytesSendfile != 0 {
		t.Fatalf("TLS fetches: %+v, want the buffered path only", st)
	}
	// A plain-text client cannot talk to the TLS listener.
	plainCl := ts.client(kgo.SASL(mechanism("PLAIN", "admin", "a-token")), kgo.DefaultProduceTopic("t"), kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err := plainCl.ProduceSync(ctxT(t, 2*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("plain text produced to the TLS listener")
	}
}
