package sqsapi

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTraceReceiveAndDelete: a receive span continues the trace in the
// message's traceparent attribute and links the other message's trace; the
// consumer sees the attribute unchanged; a delete records a span; without
// a TracerProvider nothing is recorded.
func TestTraceReceiveAndDelete(t *testing.T) {
	const (
		tpA = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		tpB = "00-11111111111111111111111111111111-2222222222222222-01"
	)
	for _, tc := range []struct {
		name    string
		tracing bool
	}{{"traced", true}, {"no provider", false}} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			e := newEnv(t, func(o *Options) {
				if tc.tracing {
					o.TracerProvider = tp
				}
			})
			url := e.createQueue("traced", nil)
			for _, tpv := range []string{tpA, tpB} {
				_, err := e.client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"),
					MessageAttributes: map[string]types.MessageAttributeValue{"traceparent": {DataType: aws.String("String"), StringValue: aws.String(tpv)}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			out, err := e.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
				MessageAttributeNames: []string{"All"}})
			if err != nil || len(out.Messages) != 2 {
				t.Fatalf("received %d: %v", len(out.Messages), err)
			}
			if got := aws.ToString(out.Messages[0].MessageAttributes["traceparent"].StringValue); got != tpA {
				t.Fatalf("consumer sees traceparent %q, want %q unchanged", got, tpA)
			}
			if _, err := e.client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
			spans := exp.GetSpans()
			if !tc.tracing {
				if len(spans) != 0 {
					t.Fatalf("recorded %d spans without a provider", len(spans))
				}
				return
			}
			if len(spans) != 2 || spans[0].Name != "receive traced" || spans[1].Name != "delete traced" {
				t.Fatalf("spans %v, want receive then delete", spans)
			}
			recv := spans[0]
			if recv.SpanContext.TraceID().String() != tpA[3:35] || recv.Parent.SpanID().String() != tpA[36:52] {
				t.Fatalf("receive span %v parent %v: want a child of %s", recv.SpanContext, recv.Parent, tpA)
			}
			if len(recv.Links) != 1 || recv.Links[0].SpanContext.TraceID().String() != tpB[3:35] {
				t.Fatalf("receive links %v, want the second message's trace", recv.Links)
			}
		})
	}
}
