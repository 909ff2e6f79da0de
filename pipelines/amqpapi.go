package pipelines

// amqpAPI checks amqp_api: a host:port when set, and a listener's TLS.
func (v *validator) amqpAPI() {
	a := v.cfg.AMQPAPI
	if a.Listen != "" {
		v.listen("amqp_api.listen", a.Listen)
	}
	if a.TLS == nil {
		return
	}
	if a.Listen == "" {
		v.fail("amqp_api.tls", ErrConflict, "tls needs amqp_api.listen")
	}
	v.required("amqp_api.tls.cert_file", a.TLS.CertFile)
	v.required("amqp_api.tls.key_file", a.TLS.KeyFile)
	if a.TLS.InsecureSkipVerify {
		v.fail("amqp_api.tls.insecure_skip_verify", ErrConflict, "insecure_skip_verify applies to clients, not to a listener")
	}
}
