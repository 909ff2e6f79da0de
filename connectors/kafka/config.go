package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Sentinel errors for invalid configuration. Every error returned by
// Validate or Options wraps ErrConfig.
var (
	ErrConfig = errors.New("kafka: invalid config")
)

// ClientConfig is a connection to one Kafka cluster (SPEC §3, connections of
// type kafka). The zero value of every optional field means "franz-go's
// default".
type ClientConfig struct {
	Brokers  []string // seed brokers, host:port; required
	ClientID string   // Kafka client.id; default "bridge"
	TLS      *TLSConfig
	SASL     *SASLConfig
	// DialTimeout bounds opening one connection; default 10s.
	DialTimeout time.Duration
	// RequestTimeout is the time franz-go allows a broker on top of a
	// request's own timeout before it treats the connection as dead
	// (kgo.RequestTimeoutOverhead), and for a sink also the produce request
	// timeout (kgo.ProduceRequestTimeout). Default 10s.
	RequestTimeout time.Duration
	// SessionTimeout is the consumer group session timeout of sources and
	// of the Kafka backbone: how long the group waits for a member that
	// stopped heartbeating (a killed process) before its partitions move.
	// Default 10s (franz-go's own is 45s); the broker must allow it
	// (group.min.session.timeout.ms, 6s by default). Heartbeats go every
	// tenth of it.
	SessionTimeout time.Duration
}

// DefaultSessionTimeout is ClientConfig.SessionTimeout's default.
const DefaultSessionTimeout = 10 * time.Second

// groupOptions are the consumer group membership options of c.
func (c ClientConfig) groupOptions() []kgo.Opt {
	st := c.SessionTimeout
	if st <= 0 {
		st = DefaultSessionTimeout
	}
	return []kgo.Opt{kgo.SessionTimeout(st), kgo.HeartbeatInterval(max(st/10, 100*time.Millisecond))}
}

// TLSConfig enables TLS. CAFile replaces the system roots when set;
// CertFile and KeyFile (both or neither) give a client certificate.
type TLSConfig struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// SASLConfig authenticates with SASL. Mechanism is PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512. Password never appears in String, LogValue or any error
// of this package.
type SASLConfig struct {
	Mechanism string
	Username  string
	Password  string
}

// SASL mechanism names as Kafka spells them.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

const (
	defaultClientID = "bridge"
	redacted        = "[redacted]"
)

// String prints the config with the password redacted, so that a %v of a
// config (or of a struct holding one) cannot leak it.
func (s SASLConfig) String() string {
	return fmt.Sprintf("{Mechanism:%s Username:%s Password:%s}", s.Mechanism, s.Username, redactedIfSet(s.Password))
}

// GoString is String for %#v.
func (s SASLConfig) GoString() string { return "kafka.SASLConfig" + s.String() }

// LogValue keeps the password out of slog output.
func (s SASLConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mechanism", s.Mechanism),
		slog.String("username", s.Username),
		slog.String("password", redactedIfSet(s.Password)),
	)
}

// MarshalJSON redacts the password too: slog's JSON handler and debug
// dumps encode nested structs with encoding/json, which ignores String and
// LogValue.
func (s SASLConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Mechanism, Username, Password string }{s.Mechanism, s.Username, redactedIfSet(s.Password)})
}

// LogValue logs the connection without secrets.
func (c ClientConfig) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("brokers", c.Brokers), slog.String("client_id", c.ClientID)}
	if c.TLS != nil {
		attrs = append(attrs, slog.Bool("tls", true))
	}
	if c.SASL != nil {
		attrs = append(attrs, slog.Any("sasl", *c.SASL))
	}
	return slog.GroupValue(attrs...)
}

func redactedIfSet(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

// Validate reports every problem of the config, joined, each wrapping
// ErrConfig. It reads no files; Options does.
func (c ClientConfig) Validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if len(c.Brokers) == 0 {
		fail("brokers: at least one broker is required")
	}
	for i, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			fail("brokers[%d]: empty address", i)
		}
	}
	if c.DialTimeout < 0 {
		fail("dial_timeout: negative duration %s", c.DialTimeout)
	}
	if c.RequestTimeout < 0 {
		fail("request_timeout: negative duration %s", c.RequestTimeout)
	}
	if c.SessionTimeout < 0 {
		fail("session_timeout: negative duration %s", c.SessionTimeout)
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		fail("tls: cert_file and key_file must be set together")
	}
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		default:
			// The mechanism is quoted, never the password: a user who put the
			// password in the wrong field must not see it echoed in a log.
			fail("sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			fail("sasl.username: required")
		}
		if s.Password == "" {
			fail("sasl.password: required")
		}
	}
	return errors.Join(errs...)
}

// Options validates the config and returns the kgo options for it: seed
// brokers, client id, dial and request timeouts, TLS (reading the CA and
// certificate files) and SASL. Errors never contain the SASL password.
func (c ClientConfig) Options() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	clientID := c.ClientID
	if clientID == "" {
		clientID = defaultClientID
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(clientID),
	}
	if c.DialTimeout > 0 {
		opts = append(opts, kgo.DialTimeout(c.DialTimeout))
	}
	if c.RequestTimeout > 0 {
		opts = append(opts, kgo.RequestTimeoutOverhead(c.RequestTimeout))
	}
	if c.TLS != nil {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != nil {
		opts = append(opts, kgo.SASL(c.SASL.mechanism()))
	}
	return opts, nil
}

func (t *TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Only for test clusters with self-signed certificates; the config
		// field is named so that nobody sets it by accident.
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: tls.ca_file: %w", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: tls.ca_file %s: no PEM certificate found", ErrConfig, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: tls.cert_file/key_file: %w", ErrConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism assumes Validate accepted s.
func (s *SASLConfig) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
	case MechanismSCRAMSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	default:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	}
}

// slogLogger adapts a *slog.Logger to kgo.Logger. franz-go's Info messages
// (connections, metadata refreshes) are too chatty for bridge's Info, which is
// for lifecycle, so they go to Debug; Warn and Error keep their level.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.log.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (l slogLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lvl slog.Level
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelDebug
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
