package exchange_test

import (
	"fmt"

	"github.com/bridgeio/bridge/embedded-broker/exchange"
)

func Example() {
	x, err := exchange.New("orders", exchange.Topic, []exchange.Binding{
		{Queue: "fulfillment-eu", Key: "order.*.eu"},
		{Queue: "fulfillment-us", Key: "order.*.us"},
		{Queue: "audit", Key: "order.#"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(x.Route("order.created.eu", nil, nil))
	fmt.Println(x.Route("order.created.ap", nil, nil))
	fmt.Println(x.Route("invoice.created.eu", nil, nil))
	// Output:
	// [audit fulfillment-eu]
	// [audit]
	// []
}
