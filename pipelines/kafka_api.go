package pipelines

import (
	"slices"
	"strconv"
)

// KafkaAPI is the Kafka-protocol listener on the embedded backbone
// (docs/kafka-api.md). An empty Listen disables it.
type KafkaAPI struct {
	Listen string `yaml:"listen"`
	// AdvertisedAddress is the host:port clients are told to connect to
	// (Metadata, FindCoordinator); empty = the listen address.
	AdvertisedAddress string `yaml:"advertised_address"`
	// TLS, when set, serves the listener over TLS (cert_file, key_file;
	// ca_file requires client certificates signed by it).
	TLS *TLS `yaml:"tls"`
	// SASL restricts the mechanisms offered. Clients authenticate with
	// username = a role (admin, producer, consumer) and password = an
	// auth.tokens token of that role. SASL is required whenever auth.tokens
	// is set; by default PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are offered.
	SASL *KafkaAPISASL `yaml:"sasl"`
	// AutoCreateTopics creates a topic a producer asks Metadata for
	// (Kafka's auto.create.topics.enable), with DefaultPartitions. Off by
	// default: a typo in a topic name should fail, not create a topic.
	AutoCreateTopics  bool `yaml:"auto_create_topics"`
	DefaultPartitions int  `yaml:"default_partitions"`
}

// KafkaAPISASL lists the SASL mechanisms the listener offers.
type KafkaAPISASL struct {
	Mechanisms []string `yaml:"mechanisms"`
}

// KafkaSASLMechanisms are the mechanisms the Kafka listener implements.
var KafkaSASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

func kafkaAPIDefaults(k *KafkaAPI, written func(string) bool) {
	if !written("kafka_api.default_partitions") {
		k.DefaultPartitions = DefaultPartitions
	}
	if k.SASL != nil && len(k.SASL.Mechanisms) == 0 {
		k.SASL.Mechanisms = slices.Clone(KafkaSASLMechanisms)
	}
}

func (v *validator) kafkaAPI() {
	k := v.cfg.KafkaAPI
	if k.Listen == "" {
		v.unused("kafka_api", "a disabled Kafka API (no listen)", map[string]bool{
			"advertised_address": k.AdvertisedAddress != "", "tls": k.TLS != nil, "sasl": k.SASL != nil, "auto_create_topics": k.AutoCreateTopics})
		return
	}
	v.listen("kafka_api.listen", k.Listen)
	if v.cfg.Backbone.Type == "kafka" {
		v.fail("kafka_api.listen", ErrConflict, "the Kafka API serves the embedded backbone; with backbone.type kafka, point Kafka clients at that cluster")
	}
	if k.AdvertisedAddress != "" {
		v.listen("kafka_api.advertised_address", k.AdvertisedAddress)
	}
	if k.TLS != nil {
		v.required("kafka_api.tls.cert_file", k.TLS.CertFile)
		v.required("kafka_api.tls.key_file", k.TLS.KeyFile)
		if k.TLS.InsecureSkipVerify {
			v.fail("kafka_api.tls.insecure_skip_verify", ErrConflict, "insecure_skip_verify applies to clients, not to a listener")
		}
	}
	if k.SASL != nil {
		if len(v.cfg.Auth.Tokens) == 0 {
			v.fail("kafka_api.sasl", ErrConflict, "SASL authenticates with auth.tokens: define some (username = role, password = token)")
		}
		for i, m := range k.SASL.Mechanisms {
			v.oneOf("kafka_api.sasl.mechanisms["+strconv.Itoa(i)+"]", m, KafkaSASLMechanisms...)
		}
	}
	if k.DefaultPartitions < 1 || k.DefaultPartitions > 10000 {
		v.fail("kafka_api.default_partitions", ErrInvalid, "must be between 1 and 10000")
	}
}
