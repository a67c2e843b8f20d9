package install

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// restrictedNamespace is where the manager's pod is tried against Pod Security admission.
const restrictedNamespace = "pod-security-restricted"

func TestInstallYAMLIsAcceptedByServerSideDryRun(t *testing.T) {
	installForDryRun(t, decodeObjects(t, readRepoFile(t, "dist/install.yaml")))
}

func TestNamespacedOverlayIsAcceptedByServerSideDryRun(t *testing.T) {
	installForDryRun(t, decodeObjects(t, kustomizeBuild(t, "config/namespaced")), watchedNamespaces...)
}

func TestHelmTemplateIsAcceptedByServerSideDryRun(t *testing.T) {
	t.Run("all namespaces", func(t *testing.T) {
		installForDryRun(t, decodeObjects(t, helmTemplate(t)))
	})
	t.Run("watched namespaces", func(t *testing.T) {
		objects := decodeObjects(t, helmTemplate(t, "watchNamespaces={"+strings.Join(watchedNamespaces, ",")+"}"))
		installForDryRun(t, objects, watchedNamespaces...)
	})
}

// The dry-run must be able to fail: a Deployment that the schema refuses is refused.
func TestServerSideDryRunRefusesAnInvalidDeployment(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	ensureNamespace(ctx, t, c, operatorNamespace, nil)
	for name, mutate := range map[string]func(*unstructured.Unstructured){
		"unknown field": func(d *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(d.Object, "yes", "spec", "template", "spec", "hardened")
		},
		"invalid pull policy": func(d *unstructured.Unstructured) {
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			containers[0].(map[string]any)["imagePullPolicy"] = "Sometimes"
			_ = unstructured.SetNestedSlice(d.Object, containers, "spec", "template", "spec", "containers")
		},
	} {
		t.Run(name, func(t *testing.T) {
			deployment := findObject(t, decodeObjects(t, readRepoFile(t, "dist/install.yaml")), "Deployment", deploymentName)
			mutate(deployment)
			if errs := dryRunApply(ctx, c, []*unstructured.Unstructured{deployment}); len(errs) == 0 {
				t.Fatal("the apiserver accepted an invalid Deployment")
			}
		})
	}
}

func TestManagerPodIsAdmittedUnderRestrictedPodSecurity(t *testing.T) {
	forEachInstallRendering(t, func(t *testing.T, manifests []byte) {
		if err := dryRunCreatePod(t, managerPod(t, manifests)); err != nil {
			t.Fatalf("the manager's pod is refused in a restricted namespace: %v", err)
		}
	})
}

// Pod Security admission must be on in the control plane for the test above to mean
// anything: each of these breaks one rule of the restricted level and must be refused.
func TestPodSecurityRefusesAManagerPodThatBreaksTheRestrictedLevel(t *testing.T) {
	manifests := readRepoFile(t, "dist/install.yaml")
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
	}{
		{"privileged", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
			p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil // the API refuses privileged without escalation
		}},
		{"runAsNonRoot false", func(p *corev1.Pod) {
			p.Spec.SecurityContext.RunAsNonRoot = ptr.To(false)
			p.Spec.Containers[0].SecurityContext.RunAsNonRoot = ptr.To(false)
		}},
		{"privilege escalation allowed", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}},
		{"capabilities kept", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Capabilities = nil }},
		{"no seccomp profile", func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = nil }},
		{"host network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := managerPod(t, manifests)
			tc.mutate(pod)
			err := dryRunCreatePod(t, pod)
			if err == nil {
				t.Fatal("admitted, want refused by PodSecurity")
			}
			if !isForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
				t.Fatalf("refused for another reason than Pod Security: %v", err)
			}
		})
	}
}

// managerPod is the Deployment's pod template as a Pod in the restricted namespace.
func managerPod(t *testing.T, manifests []byte) *corev1.Pod {
	t.Helper()
	var deployment *appsv1.Deployment = deploymentOf(t, decodeObjects(t, manifests))
	template := deployment.Spec.Template
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: deployment.Name + "-",
			Namespace:    restrictedNamespace,
			Labels:       template.Labels,
			Annotations:  template.Annotations,
		},
		Spec: *template.Spec.DeepCopy(),
	}
}

// dryRunCreatePod creates the pod with dryRun=All in a namespace enforcing the restricted Pod
// Security level, after creating the ServiceAccount it names (ServiceAccount admission is on).
func dryRunCreatePod(t *testing.T, pod *corev1.Pod) error {
	t.Helper()
	ctx := context.Background()
	c := apiServer(t)
	ensureNamespace(ctx, t, c, restrictedNamespace, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	serviceAccount := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.ServiceAccountName, Namespace: restrictedNamespace}}
	if err := c.Create(ctx, serviceAccount); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("creating ServiceAccount %s: %v", serviceAccount.Name, err)
	}
	return c.Create(ctx, pod, client.DryRunAll)
}
