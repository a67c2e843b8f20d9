package providers

// AssertionAlgorithm is the algorithm a client assertion is signed with under k: k's own, or
// the default for its key's type. It lets a caller compare it with what a server accepts
// before any call; a key that cannot sign is reported by the call itself.
func AssertionAlgorithm(k AssertionKey) (string, bool) {
	key, err := parsePrivateKey([]byte(k.PrivateKey.Reveal()))
	if err != nil {
		return k.Algorithm, k.Algorithm != ""
	}
	method, err := signingMethod(key, k.Algorithm)
	if err != nil {
		return k.Algorithm, k.Algorithm != ""
	}
	return method.Alg(), true
}
