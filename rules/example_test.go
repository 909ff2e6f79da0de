package rules_test

import (
	"fmt"

	"github.com/bridgeio/bridge/event"
	"github.com/bridgeio/bridge/rules"
)

func Example() {
	filter, err := rules.Compile(`body.type == "order.created" && body.amount >= 100`, rules.Bool)
	if err != nil {
		panic(err)
	}
	routingKey, err := rules.Compile(`"order.created." + body.region`, rules.String)
	if err != nil {
		panic(err)
	}

	env := rules.NewEnv() // one per goroutine, reused across events
	env.Reset(&event.Event{Topic: "orders", Value: []byte(`{"type":"order.created","amount":250,"region":"eu"}`)})
	pass, err := filter.EvalBool(env)
	fmt.Println(pass, err)
	key, ok, err := routingKey.EvalString(env)
	fmt.Println(key, ok, err)
	// Output:
	// true <nil>
	// order.created.eu true <nil>
}

func ExampleCompile_error() {
	_, err := rules.Compile(`bdy.amount > 100`, rules.Bool)
	fmt.Println(err)
	// Output: unknown name bdy (did you mean body?)
}

func ExampleCompileErrorRule() {
	deadLetterIf, err := rules.CompileErrorRule(`error.permanent || error.attempts >= 5`)
	if err != nil {
		panic(err)
	}
	env := rules.NewEnv()
	env.Reset(&event.Event{Value: []byte(`{}`)})
	env.SetError(rules.Failure{Message: "queue full", Attempts: 5})
	fmt.Println(deadLetterIf.EvalBool(env))
	// Output: true <nil>
}
