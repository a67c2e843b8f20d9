package main

import (
	"flag"
	"testing"

	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
)

// The cluster connection namespace is the operator's own (POD_NAMESPACE, from the downward
// API), else the shipped one; an operator confined to namespaces serves no
// ClusterBankConnection unless told where their Secrets are.
func TestClusterConnectionNamespaceDefaultsToTheOperatorsOwn(t *testing.T) {
	for _, tc := range []struct {
		name, podNamespace string
		args               []string
		want               string
	}{
		{"no POD_NAMESPACE", "", nil, internalcontroller.DefaultClusterConnectionNamespace},
		{"POD_NAMESPACE", "operators", nil, "operators"},
		{"the flag", "operators", []string{"--cluster-connection-namespace=bank-clients"}, "bank-clients"},
		{"confined to namespaces", "operators", []string{"--watch-namespaces=payments"}, ""},
		{"confined, and told", "operators", []string{"--watch-namespaces=payments", "--cluster-connection-namespace=operators"}, "operators"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNamespace)
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			flags := bindManagerFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if got := flags.clusterConnectionNamespace(fs); got != tc.want {
				t.Errorf("cluster connection namespace %q, want %q", got, tc.want)
			}
		})
	}
}

func TestManagerIsNotAShardUnlessAControllerRingIsGiven(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	f := bindManagerFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.shard().Enabled() {
		t.Error("sharded by default")
	}
	fs = flag.NewFlagSet("manager", flag.ContinueOnError)
	f = bindManagerFlags(fs)
	if err := fs.Parse([]string{"--controller-ring=bank-tokens", "--shard-name=manager-0"}); err != nil {
		t.Fatal(err)
	}
	if s := f.shard(); s.Ring != "bank-tokens" || s.Name != "manager-0" {
		t.Errorf("shard %+v", s)
	}
}
