package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	HTTPClient      *http.Client
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
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqs: load AWS config: %w", err)
	}
	return awssqs.NewFromConfig(awsCfg, func(o *awssqs.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

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
