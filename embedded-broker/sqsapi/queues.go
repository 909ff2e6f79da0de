package sqsapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
)

// Queue attribute names (SQS QueueAttributeName).
const (
	attrAll                         = "All"
	attrDelaySeconds                = "DelaySeconds"
	attrMaximumMessageSize          = "MaximumMessageSize"
	attrMessageRetentionPeriod      = "MessageRetentionPeriod"
	attrReceiveMessageWaitTime      = "ReceiveMessageWaitTimeSeconds"
	attrVisibilityTimeout           = "VisibilityTimeout"
	attrRedrivePolicy               = "RedrivePolicy"
	attrFifoQueue                   = "FifoQueue"
	attrContentBasedDeduplication   = "ContentBasedDeduplication"
	attrQueueArn                    = "QueueArn"
	attrApproximateNumberOfMessages = "ApproximateNumberOfMessages"
	attrApproximateNotVisible       = "ApproximateNumberOfMessagesNotVisible"
	attrApproximateDelayed          = "ApproximateNumberOfMessagesDelayed"
	attrCreatedTimestamp            = "CreatedTimestamp"
	attrLastModifiedTimestamp       = "LastModifiedTimestamp"
)

// ignoredQueueAttributes are accepted on create and set so that clients and
// infrastructure tools written for AWS work unchanged, but have no effect:
// encryption, IAM policies and throughput modes do not apply to an embedded
// broker. They are not returned by GetQueueAttributes.
var ignoredQueueAttributes = map[string]bool{
	"Policy": true, "KmsMasterKeyId": true, "KmsDataKeyReusePeriodSeconds": true,
	"SqsManagedSseEnabled": true, "DeduplicationScope": true, "FifoThroughputLimit": true,
	"RedriveAllowPolicy": true,
}

// readableQueueAttributes is the order GetQueueAttributes with "All" uses.
var readableQueueAttributes = []string{
	attrQueueArn, attrApproximateNumberOfMessages, attrApproximateNotVisible, attrApproximateDelayed,
	attrCreatedTimestamp, attrLastModifiedTimestamp, attrVisibilityTimeout, attrMaximumMessageSize,
	attrMessageRetentionPeriod, attrDelaySeconds, attrReceiveMessageWaitTime, attrRedrivePolicy,
	attrFifoQueue, attrContentBasedDeduplication,
}

// defaultConfig is a new queue's configuration before attributes apply: the
// SQS defaults, spelled out so that "the same attributes" compares like with
// like whatever defaults the engine would pick for zero values.
func defaultConfig(name string) queue.Config {
	return queue.Config{
		Name:              name,
		FIFO:              strings.HasSuffix(name, ".fifo"),
		VisibilityTimeout: 30 * time.Second,
		Retention:         345600 * time.Second,
		MaxMessageSize:    262144,
	}
}

// zeroVisibility asks the engine for a visibility timeout of zero (see
// queue.Config).
const zeroVisibility = -1

// normalize maps the engine's two spellings of a zero visibility timeout to
// one, so that configurations compare by meaning.
func normalize(cfg queue.Config) queue.Config {
	if cfg.VisibilityTimeout < 0 {
		cfg.VisibilityTimeout = 0
	}
	return cfg
}

type createQueueRequest struct {
	QueueName  string
	Attributes map[string]string
	Tags       map[string]string // accepted and ignored, but for bridge-temporary
}

type queueURLResponse struct {
	QueueUrl string //nolint:revive // the wire name
}

func (s *Server) createQueue(_ context.Context, req *createQueueRequest) (*queueURLResponse, *apiError) {
	if req.QueueName == "" {
		return nil, newError(kindMissingParameter, "The request must contain the parameter QueueName.")
	}
	if !validQueueName(req.QueueName) {
		return nil, newError(kindInvalidParameterValue, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length. A FIFO queue name ends in .fifo.")
	}
	idle, apiErr := temporaryIdleTimeout(req.Tags)
	if apiErr != nil {
		return nil, apiErr
	}
	if q, err := s.manager.Get(req.QueueName); err == nil {
		// SQS returns the existing queue when every attribute given matches
		// it, and QueueAlreadyExists when one differs; attributes not given
		// are not compared. The bridge-temporary tag counts as one.
		current := q.Config()
		wanted := current
		if apiErr := s.applyQueueAttributes(&wanted, req.Attributes, true); apiErr != nil {
			return nil, apiErr
		}
		if _, tagged := req.Tags[TagTemporary]; tagged {
			wanted.IdleTimeout = idle
		}
		if normalize(wanted) != normalize(current) {
			return nil, newError(kindQueueNameExists, "A queue already exists with the same name and a different value for attribute(s).")
		}
		return &queueURLResponse{s.queueURL(req.QueueName)}, nil
	}
	cfg := defaultConfig(req.QueueName)
	cfg.IdleTimeout = idle
	if apiErr := s.applyQueueAttributes(&cfg, req.Attributes, true); apiErr != nil {
		return nil, apiErr
	}
	if _, err := s.manager.Create(cfg); err != nil {
		return nil, fromQueueError(err, req.QueueName)
	}
	return &queueURLResponse{s.queueURL(req.QueueName)}, nil
}

// applyQueueAttributes sets the attributes of attrs on cfg, checking names
// and ranges as SQS does. creating allows FifoQueue, which cannot change
// after creation.
func (s *Server) applyQueueAttributes(cfg *queue.Config, attrs map[string]string, creating bool) *apiError {
	// Sorted so that, with several bad attributes, the error is always the same.
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if apiErr := s.applyQueueAttribute(cfg, name, attrs[name], creating); apiErr != nil {
			return apiErr
		}
	}
	return nil
}

func (s *Server) applyQueueAttribute(cfg *queue.Config, name, value string, creating bool) *apiError {
	seconds := func(lo, hi int) (time.Duration, *apiError) {
		n, err := strconv.Atoi(value)
		if err != nil || n < lo || n > hi {
			return 0, newError(kindInvalidAttributeValue, "Invalid value for the parameter %s: must be an integer from %d to %d.", name, lo, hi)
		}
		return time.Duration(n) * time.Second, nil
	}
	var apiErr *apiError
	switch name {
	case attrDelaySeconds:
		cfg.Delay, apiErr = seconds(0, maxDelaySeconds)
	case attrMessageRetentionPeriod:
		cfg.Retention, apiErr = seconds(60, 1209600)
	case attrReceiveMessageWaitTime:
		cfg.ReceiveWait, apiErr = seconds(0, maxWaitSeconds)
	case attrVisibilityTimeout:
		cfg.VisibilityTimeout, apiErr = seconds(0, maxVisibility)
		if apiErr == nil && cfg.VisibilityTimeout == 0 {
			// The engine reads a zero VisibilityTimeout as "default"; a
			// negative one is how a real zero is asked for.
			cfg.VisibilityTimeout = zeroVisibility
		}
	case attrMaximumMessageSize:
		n, err := strconv.Atoi(value)
		if err != nil || n < 1024 || n > 1048576 {
			return newError(kindInvalidAttributeValue, "Invalid value for the parameter MaximumMessageSize: must be an integer from 1024 to 1048576.")
		}
		cfg.MaxMessageSize = n
	case attrRedrivePolicy:
		apiErr = s.applyRedrivePolicy(cfg, value)
	case attrFifoQueue:
		fifo, err := strconv.ParseBool(value)
		switch {
		case err != nil:
			return newError(kindInvalidAttributeValue, "Invalid value for the parameter FifoQueue: must be true or false.")
		case !creating && fifo != cfg.FIFO:
			return newError(kindInvalidAttributeName, "Unknown Attribute FifoQueue.")
		case fifo != cfg.FIFO:
			return newError(kindInvalidParameterValue, "The name of a FIFO queue must end with the .fifo suffix, and only a FIFO queue's name may.")
		}
	case attrContentBasedDeduplication:
		cbd, err := strconv.ParseBool(value)
		if err != nil {
			return newError(kindInvalidAttributeValue, "Invalid value for the parameter ContentBasedDeduplication: must be true or false.")
		}
		if !cfg.FIFO {
			return newError(kindInvalidAttributeName, "Unknown Attribute ContentBasedDeduplication.")
		}
		cfg.ContentBasedDeduplication = cbd
	default:
		if known, apiErr := applyExtensionAttribute(cfg, name, value); known {
			return apiErr
		}
		if !ignoredQueueAttributes[name] {
			return newError(kindInvalidAttributeName, "Unknown Attribute %s.", name)
		}
	}
	return apiErr
}

// redrivePolicy is SQS's RedrivePolicy JSON. maxReceiveCount arrives as a
// number or as a string depending on the client, so it is decoded raw.
type redrivePolicy struct {
	DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
	MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
}

func (s *Server) applyRedrivePolicy(cfg *queue.Config, value string) *apiError {
	if value == "" {
		cfg.DeadLetterQueue, cfg.MaxReceiveCount = "", 0
		return nil
	}
	bad := func(reason string) *apiError {
		return newError(kindInvalidParameterValue, "Value %s for parameter RedrivePolicy is invalid. Reason: %s", value, reason)
	}
	var p redrivePolicy
	if err := json.Unmarshal([]byte(value), &p); err != nil {
		return bad("Redrive policy is not a valid JSON map.")
	}
	count, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil || count < 1 || count > 1000 {
		return bad("Invalid value for maxReceiveCount: must be an integer from 1 to 1000.")
	}
	dlq, ok := nameFromARN(p.DeadLetterTargetArn)
	if !ok {
		return bad("Invalid value for deadLetterTargetArn.")
	}
	target, err := s.manager.Get(dlq)
	if err != nil {
		return bad("Dead letter target does not exist.")
	}
	if target.Config().FIFO != cfg.FIFO {
		return bad("Dead-letter queue must be the same type of queue as the source.")
	}
	if dlq == cfg.Name {
		return bad("A queue cannot be its own dead-letter queue.")
	}
	cfg.DeadLetterQueue, cfg.MaxReceiveCount = dlq, count
	return nil
}

type getQueueURLRequest struct {
	QueueName string
}

func (s *Server) getQueueURL(_ context.Context, req *getQueueURLRequest) (*queueURLResponse, *apiError) {
	if req.QueueName == "" {
		return nil, newError(kindMissingParameter, "The request must contain the parameter QueueName.")
	}
	if _, err := s.manager.Get(req.QueueName); err != nil {
		return nil, fromQueueError(err, req.QueueName)
	}
	return &queueURLResponse{s.queueURL(req.QueueName)}, nil
}

type listQueuesRequest struct {
	QueueNamePrefix string
	NextToken       string
	MaxResults      *int
}

type listQueuesResponse struct {
	QueueUrls []string `json:",omitempty"` //nolint:revive // the wire name
	NextToken string   `json:",omitempty"`
}

func (s *Server) listQueues(_ context.Context, req *listQueuesRequest) (*listQueuesResponse, *apiError) {
	names, next, apiErr := paginate(s.manager.List(req.QueueNamePrefix), req.NextToken, req.MaxResults)
	if apiErr != nil {
		return nil, apiErr
	}
	resp := &listQueuesResponse{NextToken: next}
	for _, name := range names {
		resp.QueueUrls = append(resp.QueueUrls, s.queueURL(name))
	}
	return resp, nil
}

// paginate returns the page of sorted names after token (the base64 of the
// last name of the previous page) and the token of the next page. Without
// MaxResults, SQS returns up to 1000 names and no token.
func paginate(names []string, token string, maxResults *int) ([]string, string, *apiError) {
	limit := 1000
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 1000 {
			return nil, "", newError(kindInvalidParameterValue, "Value %d for parameter MaxResults is invalid. Reason: Must be between 1 and 1000.", *maxResults)
		}
		limit = *maxResults
	}
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", newError(kindInvalidParameterValue, "Invalid NextToken value.")
		}
		i, _ := slices.BinarySearch(names, string(after))
		if i < len(names) && names[i] == string(after) {
			i++
		}
		names = names[i:]
	}
	if len(names) <= limit {
		return names, "", nil
	}
	names = names[:limit]
	if maxResults == nil {
		return names, "", nil
	}
	return names, base64.RawURLEncoding.EncodeToString([]byte(names[limit-1])), nil
}

type queueURLRequest struct {
	QueueUrl string //nolint:revive // the wire name
}

type getQueueAttributesRequest struct {
	QueueUrl       string //nolint:revive // the wire name
	AttributeNames []string
}

type attributesResponse struct {
	Attributes map[string]string `json:",omitempty"`
}

func (s *Server) getQueueAttributes(_ context.Context, req *getQueueAttributesRequest) (*attributesResponse, *apiError) {
	q, _, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	want := make(map[string]bool, len(req.AttributeNames))
	for _, name := range req.AttributeNames {
		switch {
		case name == attrAll:
			for _, n := range readableQueueAttributes {
				want[n] = true
			}
			want[attrAll] = true
		case slices.Contains(readableQueueAttributes, name), slices.Contains(extensionQueueAttributes, name):
			want[name] = true
		case ignoredQueueAttributes[name]:
			// Accepted, never has a value.
		default:
			return nil, newError(kindInvalidAttributeName, "Unknown Attribute %s.", name)
		}
	}
	return &attributesResponse{s.queueAttributes(q, want)}, nil
}

func (s *Server) queueAttributes(q *queue.Queue, want map[string]bool) map[string]string {
	if len(want) == 0 {
		return nil
	}
	cfg := q.Config()
	stats := q.Stats()
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	attrs := make(map[string]string, len(want))
	set := func(name, value string) {
		if want[name] {
			attrs[name] = value
		}
	}
	set(attrQueueArn, s.queueARN(cfg.Name))
	set(attrApproximateNumberOfMessages, strconv.Itoa(stats.Visible))
	set(attrApproximateNotVisible, strconv.Itoa(stats.InFlight))
	set(attrApproximateDelayed, strconv.Itoa(stats.Delayed))
	set(attrCreatedTimestamp, strconv.FormatInt(stats.CreatedAt.Unix(), 10))
	set(attrLastModifiedTimestamp, strconv.FormatInt(stats.ModifiedAt.Unix(), 10))
	set(attrVisibilityTimeout, secs(cfg.VisibilityTimeout))
	set(attrMaximumMessageSize, strconv.Itoa(cfg.MaxMessageSize))
	set(attrMessageRetentionPeriod, secs(cfg.Retention))
	set(attrDelaySeconds, secs(cfg.Delay))
	set(attrReceiveMessageWaitTime, secs(cfg.ReceiveWait))
	if cfg.DeadLetterQueue != "" {
		policy, _ := json.Marshal(struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}{s.queueARN(cfg.DeadLetterQueue), cfg.MaxReceiveCount})
		set(attrRedrivePolicy, string(policy))
	}
	if cfg.FIFO {
		set(attrFifoQueue, "true")
		set(attrContentBasedDeduplication, strconv.FormatBool(cfg.ContentBasedDeduplication))
	}
	extensionAttributes(&cfg, want, want[attrAll], attrs)
	return attrs
}

type setQueueAttributesRequest struct {
	QueueUrl   string //nolint:revive // the wire name
	Attributes map[string]string
}

func (s *Server) setQueueAttributes(_ context.Context, req *setQueueAttributesRequest) (emptyResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return emptyResult{}, apiErr
	}
	if len(req.Attributes) == 0 {
		return emptyResult{}, newError(kindMissingParameter, "The request must contain the parameter Attributes.")
	}
	cfg := q.Config()
	if cfg.VisibilityTimeout == 0 {
		// Config reports a stored zero as 0, which SetConfig would read as
		// "default": keep it zero.
		cfg.VisibilityTimeout = zeroVisibility
	}
	if apiErr := s.applyQueueAttributes(&cfg, req.Attributes, false); apiErr != nil {
		return emptyResult{}, apiErr
	}
	if err := q.SetConfig(cfg); err != nil {
		return emptyResult{}, fromQueueError(err, name)
	}
	return emptyResult{}, nil
}

func (s *Server) deleteQueue(_ context.Context, req *queueURLRequest) (emptyResult, *apiError) {
	name, apiErr := nameFromURL(req.QueueUrl)
	if apiErr != nil {
		return emptyResult{}, apiErr
	}
	if err := s.manager.Delete(name); err != nil {
		return emptyResult{}, fromQueueError(err, name)
	}
	return emptyResult{}, nil
}

func (s *Server) purgeQueue(ctx context.Context, req *queueURLRequest) (emptyResult, *apiError) {
	q, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return emptyResult{}, apiErr
	}
	if err := q.Purge(ctx); err != nil {
		return emptyResult{}, fromQueueError(err, name)
	}
	return emptyResult{}, nil
}

type listDeadLetterSourceQueuesRequest struct {
	QueueUrl   string //nolint:revive // the wire name
	NextToken  string
	MaxResults *int
}

type listDeadLetterSourceQueuesResponse struct {
	QueueUrls []string `json:"queueUrls"` //nolint:revive // the wire name is lower case in the SQS model
	NextToken string   `json:",omitempty"`
}

func (s *Server) listDeadLetterSourceQueues(_ context.Context, req *listDeadLetterSourceQueuesRequest) (*listDeadLetterSourceQueuesResponse, *apiError) {
	_, name, apiErr := s.lookup(req.QueueUrl)
	if apiErr != nil {
		return nil, apiErr
	}
	names, next, apiErr := paginate(s.manager.DeadLetterSources(name), req.NextToken, req.MaxResults)
	if apiErr != nil {
		return nil, apiErr
	}
	resp := &listDeadLetterSourceQueuesResponse{QueueUrls: []string{}, NextToken: next}
	for _, n := range names {
		resp.QueueUrls = append(resp.QueueUrls, s.queueURL(n))
	}
	return resp, nil
}
