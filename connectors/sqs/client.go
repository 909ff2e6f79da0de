package sqs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/bridgeio/bridge/event"
)

// ClientConfig describes an SQS connection.
type ClientConfig struct {
	Region string
	// Endpoint overrides the service endpoint (http://127.0.0.1:9324 for
	// the embedded SQS API). Empty uses AWS's endpoint for Region.
	Endpoint string
	// AccessKeyID and SecretAccessKey, when set, replace the standard
	// credential chain.
	AccessKeyID     string
	SecretAccessKey string
	// HTTPClient replaces the SDK's default client. Either way the client
	// is wrapped by SafeHTTPClient.
	HTTPClient *http.Client
	// DialTimeout bounds opening a connection when HTTPClient is nil.
	// Zero keeps the SDK's default (30s).
	DialTimeout time.Duration
}

// DefaultRequestTimeout is how long a source or sink waits for the answer
// to one call (beyond a long poll's own wait) when its config says 0.
const DefaultRequestTimeout = 30 * time.Second

// requestError explains a call that ended because its own timeout passed
// (not the caller's ctx): the peer did not answer in time. It stays
// retryable.
func requestError(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within the request timeout (%v): %w", timeout, err)
	}
	return classify(err)
}

// LogValue keeps the secret out of logs.
func (c ClientConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("region", c.Region), slog.String("endpoint", c.Endpoint),
		slog.Bool("static_keys", c.AccessKeyID != ""))
}

// String keeps the secret out of %v.
func (c ClientConfig) String() string {
	return fmt.Sprintf("sqs{region=%s endpoint=%s static_keys=%v}", c.Region, c.Endpoint, c.AccessKeyID != "")
}

// ErrIncompleteKeys is returned when only one of AccessKeyID and
// SecretAccessKey is set.
var ErrIncompleteKeys = errors.New("sqs: AccessKeyID and SecretAccessKey must be set together")

// NewClient returns an SDK client for cfg. It loads the shared AWS config
// (files and environment) but makes no request.
func NewClient(ctx context.Context, cfg ClientConfig) (*awssqs.Client, error) {
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, ErrIncompleteKeys
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	} else if cfg.DialTimeout > 0 {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = cfg.DialTimeout
		})))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: load AWS config: %w", err)
	}
	return awssqs.NewFromConfig(awsCfg, func(o *awssqs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// Wrapped after LoadDefaultConfig, which configures the SDK's own
		// client (a custom CA bundle from AWS_CA_BUNDLE, for one).
		o.HTTPClient = SafeHTTPClient(o.HTTPClient)
	}), nil
}

// SafeTransport wraps an SDK client's transport so that a fast server's
// answer cannot cost the connection it arrived on.
//
// The race it closes: smithy-go closes a request's body as soon as the
// transport returns the response headers, while net/http may still be
// making its final check that the body holds nothing past Content-Length.
// The SDK's body implements io.WriterTo, and WriteTo on a closed body
// returns io.EOF, which io.Copy passes on as an error; the transport then
// closes the connection, and the response body being read fails with "use
// of closed network connection". The SDK retries (a ReceiveMessage whose
// answer was lost leaves its messages invisible until their visibility
// timeout), or fails with retries off. Against a server on the same host,
// such as bridge's SQS API, it happened to about one test run in three.
// Hiding WriterTo makes the transport read the body, and a read of a
// closed SDK body is a clean io.EOF.
func SafeTransport(rt http.RoundTripper) http.RoundTripper { return safeTransport{rt} }

type safeTransport struct{ rt http.RoundTripper }

func (t safeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(hideWriterTo(r))
}

// SafeHTTPClient is SafeTransport for an SDK HTTP client (aws.HTTPClient),
// such as the one aws-sdk-go-v2's config builds: use it as
// sqs.Options.HTTPClient = SafeHTTPClient(o.HTTPClient).
func SafeHTTPClient(c aws.HTTPClient) aws.HTTPClient { return safeClient{c} }

type safeClient struct{ c aws.HTTPClient }

func (s safeClient) Do(r *http.Request) (*http.Response, error) { return s.c.Do(hideWriterTo(r)) }

// hideWriterTo returns r with a body that has only Read and Close; the
// caller's request is not modified.
func hideWriterTo(r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	r2 := *r
	r2.Body = readOnlyBody{r.Body}
	return &r2
}

// readOnlyBody hides every method but Read and Close.
type readOnlyBody struct{ rc io.ReadCloser }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b readOnlyBody) Close() error               { return b.rc.Close() }

// permanentCodes are SQS error codes that retrying cannot fix.
var permanentCodes = map[string]bool{
	"QueueDoesNotExist":                           true,
	"AWS.SimpleQueueService.NonExistentQueue":     true,
	"AccessDenied":                                true,
	"AccessDeniedException":                       true,
	"InvalidClientTokenId":                        true,
	"UnrecognizedClientException":                 true,
	"InvalidSecurity":                             true,
	"InvalidAddress":                              true,
	"InvalidParameterValue":                       true,
	"MissingParameter":                            true,
	"InvalidMessageContents":                      true,
	"BatchRequestTooLong":                         true,
	"AWS.SimpleQueueService.BatchRequestTooLong":  true,
	"UnsupportedOperation":                        true,
	"AWS.SimpleQueueService.UnsupportedOperation": true,
}

// classify marks errors retrying cannot fix as event.ErrPermanent: a
// missing queue, denied access, invalid credentials or parameters.
// Throttling, server faults and network errors stay retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && permanentCodes[ae.ErrorCode()] {
		return event.Permanent(err)
	}
	return err
}
