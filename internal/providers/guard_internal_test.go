package providers

// loopbackGuard admits the loopback addresses the package's own tests listen on.
func loopbackGuard() *EndpointGuard {
	g, err := NewEndpointGuard(EndpointRules{AllowLoopback: true})
	if err != nil {
		panic(err) // no host patterns to refuse
	}
	return g
}
