package controller

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Open Finance: a certificate-bound token delivered with its certificate, and client
// assertion keys that rotate at a set time. Tokens live a few seconds.
var _ = Describe("Open Finance: rotating client certificates and assertion keys", Label(openFinanceLabel), func() {
	It("publishes a token bound to a rotated client certificate with that certificate in one update, and a workload reading late keeps working with the previous pair", func() {
		ns := newNamespace()
		bank.SetLifetime(sandbox.MTLSServer, 8*time.Second)
		DeferCleanup(func() { bank.SetLifetime(sandbox.MTLSServer, time.Hour) })
		btr := applyBank(ns, sandbox.MTLSServer, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.CertificateDelivery = &tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true}
		})
		first := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		certPEM, keyPEM := bank.ClientCertificate()
		seenSecrets.add(string(keyPEM))
		Expect(first.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyClientCertificate, certPEM))
		Expect(first.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyClientKey, keyPEM))

		updates := watchOutputSecret(btr)
		workload := &certificateWorkload{btr: btr}
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer GinkgoRecover()
			workload.run(done)
		})

		By("cert-manager renews the client certificate: new tls.crt and tls.key")
		renewedPEM, renewedKey, err := bank.CertificateAuthority().Issue(sandbox.Leaf{CommonName: "sandbox-bank-client", Client: true,
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})
		Expect(err).NotTo(HaveOccurred())
		seenSecrets.add(string(renewedKey))
		// Past the first renewal, so that the rotation lands between two renewals.
		time.Sleep(2 * time.Second)
		rotatedAt := time.Now()
		renewed := harness.ClientCertificateSecret(bank, ns, harness.ClientCertificateSecretName)
		renewed.Data = map[string][]byte{corev1.TLSCertKey: renewedPEM, corev1.TLSPrivateKeyKey: renewedKey}
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, renewed)).To(Succeed())

		var publishedAt time.Time
		Eventually(func() []byte {
			publishedAt = time.Now()
			return outputSecret(btr).Data[tokensv1alpha1.SecretKeyClientCertificate]
		}).WithPolling(50 * time.Millisecond).Should(Equal(renewedPEM))
		GinkgoWriter.Printf("openfinance: the renewed certificate's pair published %s after the certificate Secret changed\n", publishedAt.Sub(rotatedAt))
		Expect(publishedAt.Sub(rotatedAt)).To(BeNumerically("<", 3*time.Second), "at once, not at the next renewal")

		// Through the propagation delay after the new pair, and a renewal with it.
		Eventually(func() int { return workload.pairsSeen() }).WithTimeout(20 * time.Second).Should(BeNumerically(">=", 3))
		time.Sleep(workloadLag + time.Second)
		close(done)
		wg.Wait()

		By("every published update held a token bound to the certificate beside it")
		published := updates.stop()
		Expect(published).NotTo(BeEmpty())
		changedCertificate := 0
		for i, u := range published {
			Expect(u.boundTo).To(Equal(sandbox.CertificateThumbprint([]byte(u.certificate))),
				"update %d holds a token bound to another certificate than its tls.crt", i)
			Expect(u.thumbprintKey).To(Equal(u.boundTo))
			if i > 0 && u.certificate != published[i-1].certificate {
				changedCertificate++
				Expect(u.token).NotTo(Equal(published[i-1].token), "the certificate changed without the token")
				Expect(u.key).NotTo(Equal(published[i-1].key), "the certificate changed without its key")
			}
		}
		Expect(changedCertificate).To(Equal(1))
		GinkgoWriter.Printf("openfinance: %d Secret updates watched; %d uses of a pair read %s late, %d refused\n",
			len(published), workload.uses, workloadLag, workload.refused)
		Expect(workload.uses).To(BeNumerically(">", 20))
		Expect(workload.refused).To(BeZero(), "the protected API refused a pair the workload still held")
	})

	It("delivers a shared grant's certificate to each reader that asks, bound to the token beside it, and its key only where the connection allows it", func() {
		name := sharedConnectionName()
		ns := newNamespace()
		bank.SetLifetime(sandbox.MTLSServer, 8*time.Second)
		DeferCleanup(func() { bank.SetLifetime(sandbox.MTLSServer, time.Hour) })
		applySharedConnection(sandbox.MTLSServer, name, admitNames(ns))
		scope := bank.Credentials(sandbox.MTLSServer).Scope
		start := time.Now()
		certificateOnly := readerAsking(ns, "certificate-only", name, scope, &tokensv1alpha1.CertificateDelivery{Certificate: true})
		withKey := readerAsking(ns, "with-key", name, scope, &tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true})
		tokenOnly := readerAsking(ns, "token-only", name, scope, nil)
		certPEM, keyPEM := bank.ClientCertificate()
		seenSecrets.add(string(keyPEM))

		secret := eventuallyReady(certificateOnly, tokensv1alpha1.ReasonTokenIssued)
		Expect(secret.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyClientCertificate, certPEM))
		Expect(secret.Data).NotTo(HaveKey(tokensv1alpha1.SecretKeyClientKey))
		Expect(bank.BoundCertificateThumbprint(sandbox.MTLSServer, accessTokenIn(secret))).To(Equal(sandbox.CertificateThumbprint(certPEM)))
		Expect(eventuallyReady(tokenOnly, tokensv1alpha1.ReasonTokenIssued).Data).NotTo(HaveKey(tokensv1alpha1.SecretKeyClientCertificate))
		message := eventuallyRefused(withKey, tokensv1alpha1.ReasonPrivateKeyDeliveryRefused)
		Expect(message).To(ContainSubstring(name))
		Expect(callsSince(sandbox.MTLSServer, start)).To(HaveLen(1), "one call, the holder's, for three readers")

		By("the connection allows the key: the reader that asked gets it beside the certificate; the others do not")
		updateConnection(name, func(spec *tokensv1alpha1.BankConnectionSpec) {
			spec.PrivateKeyDelivery = tokensv1alpha1.PrivateKeyDeliveryAllowed
		})
		Eventually(func() []byte { return currentOutputData(withKey)[tokensv1alpha1.SecretKeyClientKey] }).
			WithTimeout(20 * time.Second).Should(Equal(keyPEM))
		secret = eventuallyReady(withKey, tokensv1alpha1.ReasonTokenIssued)
		Expect(bank.BoundCertificateThumbprint(sandbox.MTLSServer, accessTokenIn(secret))).To(Equal(
			sandbox.CertificateThumbprint(secret.Data[tokensv1alpha1.SecretKeyClientCertificate])))
		Expect(outputSecret(certificateOnly).Data).NotTo(HaveKey(tokensv1alpha1.SecretKeyClientKey))

		By("the connection refuses it again: the key is taken out of the reader's Secret, the token and certificate stay")
		updateConnection(name, func(spec *tokensv1alpha1.BankConnectionSpec) { spec.PrivateKeyDelivery = "" })
		eventuallyRefused(withKey, tokensv1alpha1.ReasonPrivateKeyDeliveryRefused)
		Eventually(func() map[string][]byte { return outputSecret(withKey).Data }).Should(And(
			Not(HaveKey(tokensv1alpha1.SecretKeyClientKey)), HaveKey(tokensv1alpha1.SecretKeyClientCertificate),
			HaveKey(tokensv1alpha1.SecretKeyAccessToken)))
	})

	It("switches client assertion keys at the set time, renews across the switch, and shows both thumbprints", func() {
		ns := newNamespace()
		// Renewed 9 to 10 s after issue: a switch 4 to 5 s after the first issue, taken only at
		// the next renewal, would show at least 4 s late.
		bank.SetLifetime(sandbox.SignedJWTRealm, 15*time.Second)
		DeferCleanup(func() { bank.SetLifetime(sandbox.SignedJWTRealm, time.Hour) })
		currentPEM, currentPublic := newSigningKey()
		nextPEM, nextPublic := newSigningKey()
		seenSecrets.add(string(currentPEM))
		seenSecrets.add(string(nextPEM))
		currentThumbprint, perr := providers.KeyThumbprint(providers.Secret(currentPEM))
		Expect(perr).To(BeNil())
		nextThumbprint, perr := providers.KeyThumbprint(providers.Secret(nextPEM))
		Expect(perr).To(BeNil())
		// The directory holds both keys, named by their thumbprints, before the switch.
		bank.RegisterAssertionKey(currentThumbprint, currentPublic)
		bank.RegisterAssertionKey(nextThumbprint, nextPublic)

		switchAt := metav1.NewTime(time.Now().Add(5 * time.Second).Truncate(time.Second))
		request := harness.NewSandboxRequest(bank, sandbox.SignedJWTRealm, ns, "rotating-keys")
		request.Request.Spec.ClientAssertion.NextKeyFrom = &switchAt
		request.AssertionKey.Data = map[string][]byte{
			tokensv1alpha1.DefaultPrivateKeyKey: currentPEM,
			tokensv1alpha1.NextPrivateKeyKey:    nextPEM,
		}
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		btr := request.Request
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Eventually(func() []tokensv1alpha1.SigningKeyStatus { return getBTR(btr).Status.SigningKeys }).Should(ConsistOf(
			tokensv1alpha1.SigningKeyStatus{Slot: tokensv1alpha1.SigningKeyCurrent, Thumbprint: currentThumbprint, KeyID: currentThumbprint, InUse: true},
			tokensv1alpha1.SigningKeyStatus{Slot: tokensv1alpha1.SigningKeyNext, Thumbprint: nextThumbprint, KeyID: nextThumbprint, From: &switchAt},
		))
		Expect(time.Now().Before(switchAt.Time)).To(BeTrue(), "the test set the switch too close")

		Eventually(func() bool { return signingKeyInUse(btr) == tokensv1alpha1.SigningKeyNext }).
			WithTimeout(15 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
		// Renewals go on with the next key.
		Eventually(func() int { return len(assertionsSignedWith(nextThumbprint)) }).WithTimeout(20 * time.Second).Should(BeNumerically(">=", 2))
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)

		current, next := assertionsSignedWith(currentThumbprint), assertionsSignedWith(nextThumbprint)
		Expect(current).NotTo(BeEmpty())
		GinkgoWriter.Printf("openfinance: %d assertions with the current key, the last %s before the switch; %d with the next, the first %s after it\n",
			len(current), switchAt.Sub(current[len(current)-1]), len(next), next[0].Sub(switchAt.Time))
		// A call gathered just before the switch may reach the bank just after it.
		Expect(current[len(current)-1]).To(BeTemporally("<", switchAt.Add(time.Second)))
		Expect(next[0]).To(BeTemporally(">=", switchAt.Time))
		Expect(next[0]).To(BeTemporally("<", switchAt.Add(2*time.Second)), "the switch is acted on at the set time, not at the next renewal")
		Expect(getBTR(btr).Status.SigningKeys).To(ContainElement(And(
			HaveField("Slot", tokensv1alpha1.SigningKeyCurrent), HaveField("Thumbprint", currentThumbprint), HaveField("InUse", false))))
	})
})

// publishedPair is one version of the output Secret as a watch saw it, and what the bank
// says the token in it is bound to.
type publishedPair struct {
	token, certificate, key, thumbprintKey string
	boundTo                                string
}

type outputSecretWatch struct {
	watcher watch.Interface
	mu      sync.Mutex
	seen    []publishedPair
	done    chan struct{}
}

// watchOutputSecret records every version of btr's output Secret from now on.
func watchOutputSecret(btr *tokensv1alpha1.BankTokenRequest) *outputSecretWatch {
	GinkgoHelper()
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: k8sClient.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	w, err := c.Watch(suiteCtx, &corev1.SecretList{}, client.InNamespace(btr.Namespace),
		client.MatchingFields{"metadata.name": outputSecretName(btr)})
	Expect(err).NotTo(HaveOccurred())
	ow := &outputSecretWatch{watcher: w, done: make(chan struct{})}
	go func() {
		defer close(ow.done)
		for event := range w.ResultChan() {
			secret, ok := event.Object.(*corev1.Secret)
			if !ok || event.Type == watch.Deleted {
				continue
			}
			token := string(secret.Data[tokensv1alpha1.SecretKeyAccessToken])
			seenSecrets.add(token)
			ow.mu.Lock()
			ow.seen = append(ow.seen, publishedPair{token: token,
				certificate:   string(secret.Data[tokensv1alpha1.SecretKeyClientCertificate]),
				key:           string(secret.Data[tokensv1alpha1.SecretKeyClientKey]),
				thumbprintKey: string(secret.Data[tokensv1alpha1.SecretKeyCertificateThumbprint]),
				boundTo:       bank.BoundCertificateThumbprint(sandbox.MTLSServer, token)})
			ow.mu.Unlock()
		}
	}()
	return ow
}

func (ow *outputSecretWatch) stop() []publishedPair {
	ow.watcher.Stop()
	<-ow.done
	ow.mu.Lock()
	defer ow.mu.Unlock()
	return ow.seen
}

// certificateWorkload reads the output Secret workloadLag late, as a mounted volume syncs,
// and calls the bank's protected API with the token over mutual TLS with the certificate and
// key of the same version of the Secret.
type certificateWorkload struct {
	btr *tokensv1alpha1.BankTokenRequest

	mu      sync.Mutex
	seen    []heldPair
	uses    int
	refused int
}

type heldPair struct {
	at                      time.Time
	token, certificate, key []byte
}

func (w *certificateWorkload) run(done <-chan struct{}) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			// The clock, not the tick's time: see laggingWorkload.run.
			secret := outputSecret(w.btr)
			w.observe(heldPair{at: time.Now(), token: secret.Data[tokensv1alpha1.SecretKeyAccessToken],
				certificate: secret.Data[tokensv1alpha1.SecretKeyClientCertificate], key: secret.Data[tokensv1alpha1.SecretKeyClientKey]})
			if held, ok := w.heldAt(time.Now().Add(-workloadLag)); ok {
				status := callMTLSProtectedAPI(held)
				w.mu.Lock()
				w.uses++
				if status != http.StatusOK {
					w.refused++
				}
				w.mu.Unlock()
			}
		}
	}
}

func (w *certificateWorkload) observe(p heldPair) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.seen); n == 0 || string(w.seen[n-1].token) != string(p.token) {
		w.seen = append(w.seen, p)
	}
}

// heldAt is the pair the Secret held at t; false before the first observation.
func (w *certificateWorkload) heldAt(t time.Time) (heldPair, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var held heldPair
	found := false
	for _, p := range w.seen {
		if p.at.After(t) {
			break
		}
		held, found = p, true
	}
	return held, found
}

func (w *certificateWorkload) pairsSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// callMTLSProtectedAPI calls MTLSServer's protected API as a workload does with a pair it
// mounted: the token as a Bearer token, the certificate and key in the TLS handshake.
func callMTLSProtectedAPI(p heldPair) int {
	GinkgoHelper()
	pair, err := tls.X509KeyPair(p.certificate, p.key)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bank.CABundle())
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, bank.ProtectedAPIURL(sandbox.MTLSServer), nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+string(p.token))
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	return resp.StatusCode
}

// signingKeyInUse is the slot status says signs now; "" for none.
func signingKeyInUse(btr *tokensv1alpha1.BankTokenRequest) tokensv1alpha1.SigningKeySlot {
	for _, k := range getBTR(btr).Status.SigningKeys {
		if k.InUse {
			return k.Slot
		}
	}
	return ""
}

// assertionsSignedWith lists when SignedJWTRealm accepted an assertion naming kid.
func assertionsSignedWith(kid string) []time.Time {
	var at []time.Time
	for _, a := range bank.AcceptedAssertions() {
		if a.KeyID == kid {
			at = append(at, a.At)
		}
	}
	return at
}

// readerAsking creates a request for scope through the ClusterBankConnection connection,
// asking for delivery of its client certificate (nil: none).
func readerAsking(namespace, name, connection, scope string, delivery *tokensv1alpha1.CertificateDelivery) *tokensv1alpha1.BankTokenRequest {
	GinkgoHelper()
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: scope, CertificateDelivery: delivery,
			ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: tokensv1alpha1.KindClusterBankConnection, Name: connection}}}
	Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
	return btr
}

// currentOutputData is the data of btr's output Secret; nil while there is none.
func currentOutputData(btr *tokensv1alpha1.BankTokenRequest) map[string][]byte {
	secret := &corev1.Secret{}
	if err := k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: btr.Namespace, Name: outputSecretName(btr)}, secret); err != nil {
		return nil
	}
	seenSecrets.add(string(secret.Data[tokensv1alpha1.SecretKeyAccessToken]))
	return secret.Data
}
