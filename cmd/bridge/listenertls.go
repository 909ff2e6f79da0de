package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"

	"github.com/bridgeio/bridge/pipelines"
)

// optionalListenerTLS is listenerTLS for a listener whose tls block may be
// absent (nil: plain TCP).
func optionalListenerTLS(t *pipelines.TLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	return listenerTLS(t)
}

// listenerTLS loads a listener's certificate; ca_file requires client
// certificates signed by that CA.
func listenerTLS(t *pipelines.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_file holds no PEM certificate")
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
