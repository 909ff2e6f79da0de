package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridgeio/bridge/pipelines"
)

// TestListenerTLSClientCertificates: with tls.ca_file, the HTTP API
// (net/http) and the SQS API (leanhttp) ask for a client certificate
// signed by that CA and refuse a client without one; without ca_file they
// serve any TLS client. A missing certificate file is a startup error.
func TestListenerTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caFile := testCert(t, dir, "ca", nil, nil)
	_, _, serverFile := testCert(t, dir, "server", ca, caKey)
	clientCert, clientKey, clientFile := testCert(t, dir, "client", ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	clientPair := tls.Certificate{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey}

	withCA := &pipelines.TLS{CertFile: serverFile, KeyFile: serverFile + ".key", CAFile: caFile}
	withoutCA := &pipelines.TLS{CertFile: serverFile, KeyFile: serverFile + ".key"}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	servers := map[string]func(net.Listener, *tls.Config) *server{
		"net/http": func(ln net.Listener, c *tls.Config) *server { return serve(ln, ok, c, slog.New(slog.DiscardHandler)) },
		"leanhttp": func(ln net.Listener, c *tls.Config) *server { return serveLean(ln, ok, c) },
	}
	get := func(addr string, certs []tls.Certificate) error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for name, start := range servers {
		for _, tc := range []struct {
			name     string
			tls      *pipelines.TLS
			needCert bool
		}{{"ca_file", withCA, true}, {"no ca_file", withoutCA, false}} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				cfg, err := optionalListenerTLS(tc.tls)
				if err != nil {
					t.Fatal(err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				s := start(ln, cfg)
				defer s.shutdown(t.Context())
				if err := get(s.addr, []tls.Certificate{clientPair}); err != nil {
					t.Fatalf("a client with a certificate: %v", err)
				}
				err = get(s.addr, nil)
				if tc.needCert && err == nil {
					t.Fatal("a client without a certificate was served although ca_file is set")
				}
				if !tc.needCert && err != nil {
					t.Fatalf("a client without a certificate, no ca_file: %v", err)
				}
			})
		}
	}
	if _, err := optionalListenerTLS(&pipelines.TLS{CertFile: filepath.Join(dir, "absent.pem"), KeyFile: clientFile}); err == nil {
		t.Fatal("a missing certificate file was accepted")
	}
	if c, err := optionalListenerTLS(nil); c != nil || err != nil {
		t.Fatalf("no tls block = %v, %v; want plain TCP", c, err)
	}
}

// testCert writes a certificate for 127.0.0.1 signed by parent (self-signed
// CA when parent is nil) to dir/name.pem and its key to dir/name.pem.key.
func testCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	signer, signerKey := parent, parentKey
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		signer, signerKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, file
}
