package install

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With sharding.controllerRing, the chart makes every replica a shard: the flag, the Pod's
// name as the shard's, the right to hold its Lease, the ControllerRing of BankTokenRequests
// and the Secrets they control, and the sharder's right to list and label only those.
func TestHelmChartMakesEachReplicaAShardOfTheControllerRing(t *testing.T) {
	objects := decodeObjects(t, helmTemplate(t, "sharding.controllerRing=bank-tokens", "manager.replicas=3"))
	container := deploymentOf(t, objects).Spec.Template.Spec.Containers[0]
	if !slices.Contains(container.Args, "--controller-ring=bank-tokens") {
		t.Errorf("the manager is not a shard of the ring: %v", container.Args)
	}
	podName := slices.IndexFunc(container.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	})
	if podName < 0 {
		t.Errorf("the shard is not named after its Pod (POD_NAME from metadata.name): %v", container.Env)
	}
	findObject(t, objects, "Role", "bank-token-operator-leader-election-role")
	ring := findObject(t, objects, "ControllerRing", "bank-tokens")
	resources, _, _ := unstructured.NestedSlice(ring.Object, "spec", "resources")
	if len(resources) != 1 {
		t.Fatalf("ControllerRing resources: %v", resources)
	}
	role := &rbacv1.ClusterRole{}
	fromUnstructured(t, findObject(t, objects, "ClusterRole", "sharding:controllerring:bank-tokens"), role)
	for _, rule := range role.Rules {
		if !slices.Equal(rule.Verbs, []string{"list", "patch"}) {
			t.Errorf("the sharder may %v %v; want only list and patch", rule.Verbs, rule.Resources)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{}
	fromUnstructured(t, findObject(t, objects, "ClusterRoleBinding", "sharding:controllerring:bank-tokens"), binding)
	if len(binding.Subjects) != 1 || binding.Subjects[0].Name != "sharder" || binding.Subjects[0].Namespace != "sharding-system" {
		t.Errorf("the ring's role is bound to %v, want the sharder's ServiceAccount", binding.Subjects)
	}
}

// Without it, nothing of sharding is rendered and leader election stays on.
func TestHelmChartIsNotShardedByDefault(t *testing.T) {
	objects := decodeObjects(t, helmTemplate(t))
	container := deploymentOf(t, objects).Spec.Template.Spec.Containers[0]
	if hasFlag(container.Args, "--controller-ring") {
		t.Errorf("sharded by default: %v", container.Args)
	}
	for _, o := range objects {
		if o.GetKind() == "ControllerRing" {
			t.Errorf("a ControllerRing is rendered by default: %s", o.GetName())
		}
	}
}
