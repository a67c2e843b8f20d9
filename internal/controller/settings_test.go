package controller

import (
	"reflect"
	"testing"
	"time"
)

// otherValue is v changed: every kind a setting may have is handled, so a field of a new
// kind fails the test below until it is.
func otherValue(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			v.SetInt(v.Int() + int64(time.Second))
		} else {
			v.SetInt(v.Int() + 1)
		}
	case reflect.String:
		v.SetString(v.String() + "-other")
	default:
		t.Fatalf("a setting of kind %s: teach otherValue to change it", v.Kind())
	}
}

// A restart under any other setting re-verifies every resource: the fingerprint in
// status.observed covers each field of Settings, present and future, by construction.
func TestEverySettingChangesTheObservedFingerprint(t *testing.T) {
	f := newFixture(t)
	f.issue()
	btr := f.resource()
	base := f.r.observedInputs(btr, nil)
	fields := reflect.TypeOf(Settings{})
	for i := range fields.NumField() {
		t.Run(fields.Field(i).Name, func(t *testing.T) {
			r := f.newReconciler()
			r.Settings = f.r.Settings
			otherValue(t, reflect.ValueOf(&r.Settings).Elem().Field(i))
			if r.observedInputs(btr, nil) == base {
				t.Fatalf("changing %s left the fingerprint as it was: a restart would keep decisions made under the old value", fields.Field(i).Name)
			}
		})
	}
}

// The same, end to end: after a restart under another setting, the first reconcile reads the
// Secrets again instead of deciding from status; under the same settings it reads none.
func TestARestartUnderAnotherSettingReadsTheSecretsOnce(t *testing.T) {
	f := newFixture(t)
	reads := f.withMetadataCaches()
	f.issue()
	f.clock.Step(time.Minute)
	caches := f.r
	f.r = f.newReconciler()
	f.r.APIReader, f.r.ownedSecrets, f.r.references = reads, caches.ownedSecrets, caches.references
	f.r.Settings.MinRenewalInterval = 5 * time.Second
	before := reads.count
	f.reconcile()
	if reads.count == before {
		t.Fatal("a restart under another --min-renewal-interval decided from status without reading the Secrets")
	}
	f.idleReconcile(reads, "the reconcile after the re-verification")
}
