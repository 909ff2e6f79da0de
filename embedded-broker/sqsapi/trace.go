package sqsapi

import (
	"context"
	"net/http"

	"github.com/bridgeio/bridge/embedded-broker/queue"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing. A server with Options.TracerProvider records one span per
// ReceiveMessage that returned messages and one per DeleteMessage(Batch):
//
//   - receive QUEUE (consumer): its parent is the trace context in the first
//     message's traceparent (and tracestate) attribute, so the span continues
//     the trace the producer (or a bridge pipeline) started; the other
//     messages' traces and the request's own traceparent HTTP header are links.
//   - delete QUEUE (client): a receipt handle carries no trace, so its parent
//     is the request's traceparent HTTP header (OTel-instrumented SDK clients
//     send one), else it starts a trace.
//
// Message attributes are returned unchanged: the consumer sees the
// traceparent the producer stored (the MD5 of attributes must match what
// was sent). Without a TracerProvider nothing is extracted or recorded.

// traceContext is the W3C propagator; it is stateless.
var traceContext = propagation.TraceContext{}

// maxReceiveLinks bounds a receive span's links (10 messages + the request).
const maxReceiveLinks = 11

// attrCarrier reads trace headers from a message's attributes.
type attrCarrier []queue.Attribute

func (c attrCarrier) Get(key string) string {
	for i := range c {
		if c[i].Name == key {
			return string(c[i].Value)
		}
	}
	return ""
}
func (c attrCarrier) Set(string, string) {}
func (c attrCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i := range c {
		keys[i] = c[i].Name
	}
	return keys
}

// requestTrace returns the trace context of the request's traceparent header.
func requestTrace(r *http.Request) trace.SpanContext {
	if r.Header.Get("traceparent") == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
}

// withRequestTrace puts the request's trace context into ctx, for handlers.
func (s *Server) withRequestTrace(ctx context.Context, r *http.Request) context.Context {
	if s.tracer == nil {
		return ctx
	}
	if sc := requestTrace(r); sc.IsValid() {
		return context.WithValue(ctx, requestTraceKey{}, sc)
	}
	return ctx
}

type requestTraceKey struct{}

func requestTraceFrom(ctx context.Context) trace.SpanContext {
	sc, _ := ctx.Value(requestTraceKey{}).(trace.SpanContext)
	return sc
}

// traceReceive records the receive span of msgs from queue name.
func (s *Server) traceReceive(ctx context.Context, name string, msgs []queue.Message) {
	if s.tracer == nil || len(msgs) == 0 {
		return
	}
	var parent trace.SpanContext
	links := make([]trace.Link, 0, maxReceiveLinks)
	for i := range msgs {
		sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), attrCarrier(msgs[i].Attributes)))
		if !sc.IsValid() {
			continue
		}
		if !parent.IsValid() {
			parent = sc
			continue
		}
		if sc.TraceID() != parent.TraceID() && len(links) < maxReceiveLinks {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if req := requestTraceFrom(ctx); req.IsValid() && len(links) < maxReceiveLinks {
		links = append(links, trace.Link{SpanContext: req})
	}
	pctx := context.Background()
	if parent.IsValid() {
		pctx = trace.ContextWithRemoteSpanContext(pctx, parent)
	}
	_, span := s.tracer.Start(pctx, "receive "+name, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("messaging.system", "aws_sqs"), attribute.String("messaging.destination.name", name),
			attribute.String("messaging.operation.name", "receive"), attribute.Int("messaging.batch.message_count", len(msgs))))
	span.End()
}

// startDelete starts the delete span of n receipt handles on queue name.
func (s *Server) startDelete(ctx context.Context, name string, n int) trace.Span {
	if s.tracer == nil {
		return trace.SpanFromContext(context.Background()) // non-recording
	}
	pctx := context.Background()
	if req := requestTraceFrom(ctx); req.IsValid() {
		pctx = trace.ContextWithRemoteSpanContext(pctx, req)
	}
	_, span := s.tracer.Start(pctx, "delete "+name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("messaging.system", "aws_sqs"), attribute.String("messaging.destination.name", name),
			attribute.String("messaging.operation.name", "settle"), attribute.Int("messaging.batch.message_count", n)))
	return span
}
