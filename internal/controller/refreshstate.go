package controller

import (
	"encoding/json"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The refresh-token Secret's codec: decodeRefreshState is the one function that reads its
// keys and annotations, encode the one that writes them. Everything else works on
// refreshState values, so a transition (store the chains, mark a call in flight, rewrite the
// revocation queue) is a change of fields, never of map keys.
const (
	// refreshTokenKey holds the active chain's refresh token.
	refreshTokenKey = "refresh_token"
	// standbyRefreshTokenKey holds the standby chain's refresh token.
	standbyRefreshTokenKey = "standby_refresh_token"
	// revocationsKey holds the grants waiting to be revoked.
	revocationsKey = "revocations"
	// annotationStandbySince: when the standby chain's access token was superseded in the
	// output Secret.
	annotationStandbySince = "tokens.banktoken.io/standby-since"
	// annotationRefreshInFlight: the mark of a refresh call sent (a fingerprint of the token
	// and the time of sending; never the token).
	annotationRefreshInFlight = "tokens.banktoken.io/refresh-in-flight"
	// annotationRevocationEndpoint: the revocation endpoint of the inputs its chains were
	// issued under.
	annotationRevocationEndpoint = "tokens.banktoken.io/revocation-endpoint"
	// annotationRefreshRefusals: how many refresh tokens in a row the bank refused under
	// the inputs the chains are bound to.
	annotationRefreshRefusals = "tokens.banktoken.io/refresh-refusals"
)

// refreshStateAnnotations are the annotations the codec owns; any other on the Secret
// (someone else's) is kept as it is.
var refreshStateAnnotations = []string{annotationInputHash, annotationStandbySince, annotationRefreshInFlight,
	annotationRevocationEndpoint, annotationRefreshRefusals}

// refreshState is what the refresh-token Secret holds for one resource.
type refreshState struct {
	// secret is the Secret as last read or written; nil when none exists. It is not modified.
	secret *corev1.Secret

	// Active is the chain whose access token is published; Standby, at a bank whose refresh
	// revokes the access token, the previous chain (see refreshtoken.go).
	Active, Standby providers.Secret
	// StandbySince is when Standby's access token was superseded; zero when unknown.
	StandbySince time.Time
	// BoundTo is the request hash of the inputs the chains were issued under.
	BoundTo string
	// InFlight is the mark of a refresh call sent and not yet resolved by a store.
	InFlight string
	// RevocationEndpoint is where the chains are revoked, as recorded when they were stored.
	RevocationEndpoint string
	// Revocations are the grants waiting to be revoked (see revocation.go).
	Revocations []pendingRevocation
	// Refusals counts the refresh tokens the bank refused in a row under BoundTo's inputs
	// (see refreshRefusedTooOften).
	Refusals int
}

// decodeRefreshState reads the refresh-token Secret; nil decodes to the empty state. Parts
// edited by hand into something unreadable decode as absent: an unreadable standby-since
// as unknown (a zero StandbySince, which every reader treats as "just now"), an unreadable
// queue as empty.
func decodeRefreshState(secret *corev1.Secret) refreshState {
	if secret == nil {
		return refreshState{}
	}
	s := refreshState{
		secret:             secret,
		Active:             providers.Secret(secret.Data[refreshTokenKey]),
		Standby:            providers.Secret(secret.Data[standbyRefreshTokenKey]),
		BoundTo:            secret.Annotations[annotationInputHash],
		InFlight:           secret.Annotations[annotationRefreshInFlight],
		RevocationEndpoint: secret.Annotations[annotationRevocationEndpoint],
		Revocations:        decodeRevocations(secret.Data[revocationsKey]),
	}
	if since, err := time.Parse(time.RFC3339, secret.Annotations[annotationStandbySince]); err == nil {
		s.StandbySince = since
	}
	if refusals, err := strconv.Atoi(secret.Annotations[annotationRefreshRefusals]); err == nil && refusals > 0 {
		s.Refusals = refusals
	}
	return s
}

// encode is the Secret's data and annotations for s; annotations others set are kept.
func (s refreshState) encode() (map[string][]byte, map[string]string) {
	annotations := map[string]string{}
	if s.secret != nil {
		for k, v := range s.secret.Annotations {
			annotations[k] = v
		}
	}
	for _, k := range refreshStateAnnotations {
		delete(annotations, k)
	}
	data := map[string][]byte{}
	set := func(m map[string]string, k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	if !s.Active.IsZero() {
		data[refreshTokenKey] = []byte(s.Active.Reveal())
	}
	if !s.Standby.IsZero() {
		data[standbyRefreshTokenKey] = []byte(s.Standby.Reveal())
		if !s.StandbySince.IsZero() {
			annotations[annotationStandbySince] = formatTime(s.StandbySince)
		}
	}
	if len(s.Revocations) > 0 {
		data[revocationsKey] = encodeRevocations(s.Revocations)
	}
	set(annotations, annotationInputHash, s.BoundTo)
	set(annotations, annotationRefreshInFlight, s.InFlight)
	set(annotations, annotationRevocationEndpoint, s.RevocationEndpoint)
	if s.Refusals > 0 {
		annotations[annotationRefreshRefusals] = strconv.Itoa(s.Refusals)
	}
	return data, annotations
}

// exists says whether the Secret exists, or has anything to hold once written.
func (s refreshState) exists() bool {
	return s.secret != nil || s.holdsChains() || len(s.Revocations) > 0
}

// holdsChains says whether a refresh token is held.
func (s refreshState) holdsChains() bool { return !s.Active.IsZero() || !s.Standby.IsZero() }

// standbySinceOr is when the standby chain's access token was superseded, or now when that
// is unknown: the propagation delay then counts from now, the side that never cuts a
// workload off.
func (s refreshState) standbySinceOr(now time.Time) time.Time {
	if s.StandbySince.IsZero() {
		return now
	}
	return s.StandbySince
}

// storedRevocation is a pendingRevocation as the Secret holds it: providers.Secret marshals
// as [redacted] on purpose, so the token is a plain string only here.
type storedRevocation struct {
	Token     string    `json:"token"`
	Endpoint  string    `json:"endpoint"`
	NotBefore time.Time `json:"notBefore"`
	Attempts  int       `json:"attempts,omitempty"`
}

// decodeRevocations reads the queue; an unreadable one (edited by hand) is empty.
func decodeRevocations(raw []byte) []pendingRevocation {
	if len(raw) == 0 {
		return nil
	}
	var stored []storedRevocation
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil
	}
	pending := make([]pendingRevocation, 0, len(stored))
	for _, s := range stored {
		if s.Token != "" && s.Endpoint != "" {
			pending = append(pending, pendingRevocation{providers.Secret(s.Token), s.Endpoint, s.NotBefore, s.Attempts})
		}
	}
	return pending
}

func encodeRevocations(pending []pendingRevocation) []byte {
	stored := make([]storedRevocation, len(pending))
	for i, p := range pending {
		stored[i] = storedRevocation{p.Token.Reveal(), p.Endpoint, p.NotBefore.UTC().Truncate(time.Second), p.Attempts}
	}
	raw, _ := json.Marshal(stored) // strings, a time and an int: cannot fail
	return raw
}
