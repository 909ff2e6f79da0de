package sqsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"go.opentelemetry.io/otel/trace"
)

const (
	contentType = "application/x-amz-json-1.0"
	// accountID is the fixed account of every queue URL and ARN: there is one
	// tenant per bridge process.
	accountID = "000000000000"
	// maxRequestBytes bounds a request body. The largest legal request is a
	// SendMessageBatch of 1 MiB of payload; JSON escaping and attribute
	// names add a little, so 2 MiB leaves room without letting a client make
	// the server buffer an unbounded body.
	maxRequestBytes = 2 << 20
	// targetPrefix is the X-Amz-Target prefix of every SQS action.
	targetPrefix = "AmazonSQS."
)

// Credential is one access key pair accepted for SigV4 verification.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Options configures a Server.
type Options struct {
	// Addr is host:port the server is reachable at; it is the authority of
	// the queue URLs the server hands out (http://Addr/000000000000/NAME).
	Addr string
	// Region appears in queue ARNs. Default us-east-1. Signed requests may
	// name any region in their credential scope.
	Region string
	// Credentials, when non-empty, make every request require a valid AWS
	// Signature V4 by one of these keys.
	Credentials []Credential
	Logger      *slog.Logger
	// Now is the clock for SigV4 expiry and move-task timestamps. Default time.Now.
	Now func() time.Time
	// TracerProvider, when set, records receive and delete spans (trace.go).
	// nil records nothing and costs nothing.
	TracerProvider trace.TracerProvider
}

// Manager is what the server needs from the queue engine; *queue.Manager
// implements it. It is an interface so that a test can wrap the real manager
// to inject failures.
type Manager interface {
	Create(cfg queue.Config) (*queue.Queue, error)
	Get(name string) (*queue.Queue, error)
	Delete(name string) error
	List(prefix string) []string
	DeadLetterSources(dlq string) []string
	Redrive(ctx context.Context, dlq, dest string, max, perSecond int) (int, error)
}

// Server serves the SQS JSON 1.0 protocol over a queue Manager. It is safe for
// concurrent use. It owns the goroutines of message move tasks; Close stops
// them.
type Server struct {
	manager Manager
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	keys    map[string]string // access key id -> secret
	tracer  trace.Tracer      // nil without Options.TracerProvider

	// ctx is cancelled by Close; move tasks run under it.
	ctx    context.Context
	cancel context.CancelFunc
	tasks  moveTasks
	wg     sync.WaitGroup

	bufs   sync.Pool // *[]byte request and response buffers
	counts requestCounts
	ids    requestIDs // RequestId of query answers
}

// New returns a server over m. It starts no goroutines and does no I/O.
func New(m Manager, opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	opts.Addr = advertisedAddr(opts.Addr)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{manager: m, opts: opts, log: opts.Logger, now: opts.Now}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer("github.com/bridgeio/bridge/embedded-broker/sqsapi")
	}
	if len(opts.Credentials) > 0 {
		s.keys = make(map[string]string, len(opts.Credentials))
		for _, c := range opts.Credentials {
			s.keys[c.AccessKeyID] = c.SecretAccessKey
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tasks.byHandle = make(map[string]*moveTask)
	s.ids.init()
	return s
}

// Close cancels running message move tasks and waits for them, bounded by
// ctx. It is idempotent. It does not close the Manager, which the caller owns.
func (s *Server) Close(ctx context.Context) error {
	s.tasks.mu.Lock()
	s.tasks.closed = true
	s.tasks.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handlers is the action table of both protocols.
var handlers = map[string]handler{
	"CreateQueue":                  act((*Server).createQueue),
	"GetQueueUrl":                  act((*Server).getQueueURL),
	"ListQueues":                   act((*Server).listQueues),
	"GetQueueAttributes":           act((*Server).getQueueAttributes),
	"SetQueueAttributes":           act((*Server).setQueueAttributes),
	"DeleteQueue":                  act((*Server).deleteQueue),
	"PurgeQueue":                   act((*Server).purgeQueue),
	"SendMessage":                  act((*Server).sendMessage),
	"SendMessageBatch":             act((*Server).sendMessageBatch),
	"ReceiveMessage":               act((*Server).receiveMessage),
	"DeleteMessage":                act((*Server).deleteMessage),
	"DeleteMessageBatch":           act((*Server).deleteMessageBatch),
	"ChangeMessageVisibility":      act((*Server).changeMessageVisibility),
	"ChangeMessageVisibilityBatch": act((*Server).changeMessageVisibilityBatch),
	"ListDeadLetterSourceQueues":   act((*Server).listDeadLetterSourceQueues),
	"StartMessageMoveTask":         act((*Server).startMessageMoveTask),
	"ListMessageMoveTasks":         act((*Server).listMessageMoveTasks),
	"CancelMessageMoveTask":        act((*Server).cancelMessageMoveTask),
}

// ServeHTTP serves both protocols on one listener: JSON 1.0 (POST / with
// X-Amz-Target: AmazonSQS.<Action>) and query (Action=<Action> in a form
// body or a GET query string; see isQueryRequest). Long polls end early when
// the client disconnects (r.Context is cancelled).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isQueryRequest(r) {
		s.counts.add(ProtocolQuery)
		s.serveQuery(w, r)
		return
	}
	s.counts.add(ProtocolJSON)
	if r.Method != http.MethodPost {
		writeError(w, newError(kindMethodNotAllowed, "Only POST is supported."))
		return
	}
	bufp := s.getBuf()
	defer s.putBuf(bufp)
	body, apiErr := readBody(w, r, (*bufp)[:0])
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if s.keys != nil {
		if apiErr := s.verifySignature(r, body); apiErr != nil {
			writeError(w, apiErr)
			return
		}
	}
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	h := handlers[action]
	if !ok || h == nil {
		writeError(w, newError(kindInvalidAction, "The action %q is not valid for this endpoint.", r.Header.Get("X-Amz-Target")))
		return
	}
	outp := s.getBuf()
	defer s.putBuf(outp)
	out, apiErr := h(s, s.withRequestTrace(r.Context(), r), jsonCodec{}, action, request{body: body}, (*outp)[:0])
	*bufp = body[:0]
	if apiErr != nil {
		s.logFailure(r.Context(), action, apiErr)
		writeError(w, apiErr)
		return
	}
	*outp = out[:0]
	s.writeAnswer(w, jsonCodec{}, out)
}

// writeAnswer writes a successful answer. The whole body is at hand: a
// Content-Length spares both sides chunked encoding for answers past
// net/http's 2 KiB buffer.
func (s *Server) writeAnswer(w http.ResponseWriter, c codec, out []byte) {
	hdr := w.Header()
	c.writeHeader(hdr)
	hdr.Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out) // the client went away; nothing to report to
}

// logFailure logs a failed action. A server fault (the engine failed) needs
// a human; a client's mistake is routine and only worth a debug line.
func (s *Server) logFailure(ctx context.Context, action string, apiErr *apiError) {
	level := slog.LevelDebug
	if apiErr.kind.status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	if s.log.Enabled(ctx, level) {
		s.log.LogAttrs(ctx, level, "sqs request failed", slog.String("action", action), slog.String("error", apiErr.Error()))
	}
}

// putBuf returns a buffer to the pool unless a large request grew it: the
// pool must not pin megabytes per idle connection.
func (s *Server) putBuf(p *[]byte) {
	if cap(*p) <= maxPooledBuf {
		s.bufs.Put(p)
	}
}

const maxPooledBuf = 64 << 10

func (s *Server) getBuf() *[]byte {
	if p, ok := s.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 4096)
	return &b
}

// readBody reads the whole body, bounded by maxRequestBytes: SigV4 needs its
// hash before anything is decoded.
func readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, *apiError) {
	if r.ContentLength > maxRequestBytes {
		return nil, newError(kindRequestTooLarge, "Request body larger than %d bytes.", maxRequestBytes)
	}
	b := bytes.NewBuffer(buf)
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, newError(kindRequestTooLarge, "Request body larger than %d bytes.", maxRequestBytes)
		}
		return nil, newError(kindSerialization, "Reading the request body failed: %v", err)
	}
	return b.Bytes(), nil
}

// decode unmarshals a request body. An empty body is an empty request, as
// the SDK sends "{}" for operations without input.
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if fastDecode(body, v) {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return newError(kindSerialization, "Field %s has the wrong type: expected %s.", typeErr.Field, typeErr.Type)
		}
		return newError(kindSerialization, "The request body is not valid JSON: %v", err)
	}
	return nil
}

// encode appends v as JSON to out; used for the cold actions where the
// shapes vary and a hand-written encoder would buy nothing.
func encode(out []byte, v any) ([]byte, *apiError) {
	b, err := json.Marshal(v)
	if err != nil {
		return out, newError(kindInternal, "encoding the response failed: %v", err)
	}
	return append(out, b...), nil
}

// advertisedAddr turns a listen address into one a client can dial: a
// listener on ":9324" or "0.0.0.0:9324" is reached at "localhost:9324".
func advertisedAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("localhost", port)
	}
	return addr
}

// queueURL is the URL the server hands out for a queue name.
func (s *Server) queueURL(name string) string {
	return "http://" + s.opts.Addr + "/" + accountID + "/" + name
}

// queueARN is the ARN of a queue name.
func (s *Server) queueARN(name string) string {
	return "arn:aws:sqs:" + s.opts.Region + ":" + accountID + ":" + name
}

// nameFromURL extracts the queue name from a queue URL. Only the last path
// segment matters: clients may reach the server under another host name than
// Addr (a proxy, a container alias), and SQS itself accepts any host form.
func nameFromURL(u string) (string, *apiError) {
	if u == "" {
		return "", newError(kindMissingParameter, "The request must contain the parameter QueueUrl.")
	}
	i := strings.LastIndexByte(u, '/')
	name := u[i+1:]
	if !validQueueName(name) {
		return "", newError(kindInvalidAddress, "The address %s is not valid for this endpoint.", u)
	}
	return name, nil
}

// nameFromARN extracts the queue name from arn:aws:sqs:REGION:ACCOUNT:NAME.
func nameFromARN(arn string) (string, bool) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || !validQueueName(parts[5]) {
		return "", false
	}
	return parts[5], true
}

// lookup resolves a queue URL to its queue.
func (s *Server) lookup(u string) (*queue.Queue, string, *apiError) {
	name, apiErr := nameFromURL(u)
	if apiErr != nil {
		return nil, "", apiErr
	}
	q, err := s.manager.Get(name)
	if err != nil {
		return nil, name, fromQueueError(err, name)
	}
	return q, name, nil
}
