package install

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const (
	deploymentName = "bank-token-operator-controller-manager"
	managerRole    = "bank-token-operator-manager-role"
	managerBinding = "bank-token-operator-manager-rolebinding"
)

// watchedNamespaces are the namespaces config/namespaced ships with and the chart is rendered for.
var watchedNamespaces = []string{"payments", "treasury"}

func TestInstallYAMLIsTheCommittedBuildOfConfigDefault(t *testing.T) {
	built := kustomizeBuild(t, "config/default")
	committed := readRepoFile(t, "dist/install.yaml")
	if !bytes.Equal(built, committed) {
		t.Fatalf("dist/install.yaml is stale: run `make build-installer` and commit it\n%s", firstDifference(committed, built))
	}
}

func TestChartAndOverlayCopiesMatchTheGeneratedCRDsAndRole(t *testing.T) {
	generatedRules := clusterRoleRules(t, readRepoFile(t, "config/rbac/role.yaml"))
	const hint = "run `make derived-manifests` and commit the result"

	chart := decodeObjects(t, helmTemplate(t))
	generatedCRDs := generatedCRDs(t)
	if got := len(objectsOfKind(chart, "CustomResourceDefinition")); got != len(generatedCRDs) {
		t.Errorf("the chart has %d CRDs, config/crd/bases %d: %s", got, len(generatedCRDs), hint)
	}
	for _, generatedCRD := range generatedCRDs {
		chartCRD := findObject(t, chart, "CustomResourceDefinition", generatedCRD.GetName())
		if !reflect.DeepEqual(chartCRD.Object["spec"], generatedCRD.Object["spec"]) {
			t.Errorf("the chart's CRD %s differs from config/crd/bases: %s", generatedCRD.GetName(), hint)
		}
	}
	if got := rulesOf(t, findObject(t, chart, "ClusterRole", managerRole)); !reflect.DeepEqual(got, generatedRules) {
		t.Errorf("the chart's manager rules differ from config/rbac/role.yaml: %s\n got: %v\nwant: %v", hint, got, generatedRules)
	}

	overlayRole := decodeObjects(t, readRepoFile(t, "config/namespaced/manager-role/role.yaml"))[0]
	if got := rulesOf(t, overlayRole); !reflect.DeepEqual(got, generatedRules) {
		t.Errorf("config/namespaced/manager-role/role.yaml differs from config/rbac/role.yaml: %s", hint)
	}
}

func TestHelmChartInstallsTheObjectsOfInstallYAML(t *testing.T) {
	installed := decodeObjects(t, readRepoFile(t, "dist/install.yaml"))
	chart := decodeObjects(t, helmTemplate(t))

	want := objectKeys(installed)
	// Helm installs into a namespace it is given (helm install --create-namespace) rather than
	// creating one.
	want = slices.DeleteFunc(want, func(k string) bool { return strings.HasPrefix(k, "Namespace ") })
	if got := objectKeys(chart); !slices.Equal(got, want) {
		t.Fatalf("the chart and dist/install.yaml install different objects\nchart:        %v\ninstall.yaml: %v", got, want)
	}

	kustomizeDeployment := deploymentOf(t, installed)
	helmDeployment := deploymentOf(t, chart)
	kustomizeContainer, helmContainer := kustomizeDeployment.Spec.Template.Spec.Containers[0], helmDeployment.Spec.Template.Spec.Containers[0]
	for _, field := range []struct {
		name      string
		kustomize any
		helm      any
	}{
		{"image", kustomizeContainer.Image, helmContainer.Image},
		{"pod securityContext", kustomizeDeployment.Spec.Template.Spec.SecurityContext, helmDeployment.Spec.Template.Spec.SecurityContext},
		{"container securityContext", kustomizeContainer.SecurityContext, helmContainer.SecurityContext},
		{"resources", kustomizeContainer.Resources, helmContainer.Resources},
		{"ports", kustomizeContainer.Ports, helmContainer.Ports},
		{"livenessProbe", kustomizeContainer.LivenessProbe, helmContainer.LivenessProbe},
		{"readinessProbe", kustomizeContainer.ReadinessProbe, helmContainer.ReadinessProbe},
		{"selector", kustomizeDeployment.Spec.Selector, helmDeployment.Spec.Selector},
		{"serviceAccountName", kustomizeDeployment.Spec.Template.Spec.ServiceAccountName, helmDeployment.Spec.Template.Spec.ServiceAccountName},
		{"env (POD_NAMESPACE, the cluster connection namespace; MEMORY_LIMIT, the garbage collector's)", kustomizeContainer.Env, helmContainer.Env},
	} {
		if !reflect.DeepEqual(field.kustomize, field.helm) {
			t.Errorf("the Deployment's %s differs\n  install.yaml: %+v\n  chart:        %+v", field.name, field.kustomize, field.helm)
		}
	}
	for _, flag := range []string{"--leader-elect", "--metrics-bind-address", "--health-probe-bind-address"} {
		if !hasFlag(kustomizeContainer.Args, flag) || !hasFlag(helmContainer.Args, flag) {
			t.Errorf("%s must be passed by both: install.yaml %v, chart %v", flag, kustomizeContainer.Args, helmContainer.Args)
		}
	}
}

func TestManagerDeploymentIsHardenedAndObservable(t *testing.T) {
	forEachInstallRendering(t, func(t *testing.T, manifests []byte) {
		objects := decodeObjects(t, manifests)
		deployment := deploymentOf(t, objects)
		pod := deployment.Spec.Template.Spec
		container := pod.Containers[0]

		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext must set runAsNonRoot and seccomp RuntimeDefault: %+v", sc)
		}
		sc := container.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("the manager's root filesystem must be read-only: %+v", sc)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("privilege escalation must be off: %+v", sc)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("all capabilities must be dropped and none added: %+v", sc)
		}
		for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := container.Resources.Requests[resource]; !ok {
				t.Errorf("no %s request", resource)
			}
			if _, ok := container.Resources.Limits[resource]; !ok {
				t.Errorf("no %s limit", resource)
			}
		}
		if container.LivenessProbe == nil || container.ReadinessProbe == nil {
			t.Error("liveness and readiness probes are required")
		}
		if !hasFlag(container.Args, "--leader-elect") || slices.Contains(container.Args, "--leader-elect=false") {
			t.Errorf("leader election must be on: %v", container.Args)
		}

		service := findObject(t, objects, "Service", "bank-token-operator-controller-manager-metrics-service")
		port, _, _ := unstructured.NestedSlice(service.Object, "spec", "ports")
		if len(port) != 1 || port[0].(map[string]any)["targetPort"] != "metrics" {
			t.Errorf("the metrics Service must target the manager's metrics port: %v", port)
		}
		selector, _, _ := unstructured.NestedStringMap(service.Object, "spec", "selector")
		for k, v := range selector {
			if deployment.Spec.Template.Labels[k] != v {
				t.Errorf("the metrics Service selects %s=%s, which the manager's pods do not carry", k, v)
			}
		}
		findObject(t, objects, "ServiceAccount", pod.ServiceAccountName)
	})
}

func TestInstallYAMLNamespaceEnforcesRestrictedPodSecurity(t *testing.T) {
	ns := findObject(t, decodeObjects(t, readRepoFile(t, "dist/install.yaml")), "Namespace", operatorNamespace)
	if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Fatalf("namespace %s: pod-security.kubernetes.io/enforce=%q, want restricted", operatorNamespace, got)
	}
}

// Watching some namespaces must swap the cluster-wide grant for Roles in exactly those
// namespaces, with the same rules, and tell the manager.
func TestNamespacedInstallGrantsTheManagerRolesOnlyInWatchedNamespaces(t *testing.T) {
	generatedRules := clusterRoleRules(t, readRepoFile(t, "config/rbac/role.yaml"))
	for source, manifests := range map[string][]byte{
		"config/namespaced":    kustomizeBuild(t, "config/namespaced"),
		"helm watchNamespaces": helmTemplate(t, "watchNamespaces={"+strings.Join(watchedNamespaces, ",")+"}"),
	} {
		t.Run(source, func(t *testing.T) {
			objects := decodeObjects(t, manifests)
			for _, o := range objects {
				if (o.GetKind() == "ClusterRole" && o.GetName() == managerRole) ||
					(o.GetKind() == "ClusterRoleBinding" && o.GetName() == managerBinding) {
					t.Errorf("%s must not be installed when namespaces are given", objectKey(o))
				}
			}
			var roleNamespaces []string
			for _, role := range objectsOfKind(objects, "Role") {
				if role.GetName() != managerRole {
					continue
				}
				roleNamespaces = append(roleNamespaces, role.GetNamespace())
				if got := rulesOf(t, role); !reflect.DeepEqual(got, generatedRules) {
					t.Errorf("%s: rules differ from config/rbac/role.yaml\n got: %v\nwant: %v", objectKey(role), got, generatedRules)
				}
			}
			if !slices.Equal(roleNamespaces, watchedNamespaces) {
				t.Errorf("manager Roles in namespaces %v, want %v", roleNamespaces, watchedNamespaces)
			}
			var bindingNamespaces []string
			for _, o := range objectsOfKind(objects, "RoleBinding") {
				if o.GetName() != managerBinding {
					continue
				}
				bindingNamespaces = append(bindingNamespaces, o.GetNamespace())
				binding := &rbacv1.RoleBinding{}
				fromUnstructured(t, o, binding)
				wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: "bank-token-operator-controller-manager", Namespace: operatorNamespace}
				if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != managerRole || !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
					t.Errorf("%s binds %+v to %+v, want Role %s to %+v", objectKey(o), binding.RoleRef, binding.Subjects, managerRole, wantSubject)
				}
			}
			if !slices.Equal(bindingNamespaces, watchedNamespaces) {
				t.Errorf("manager RoleBindings in namespaces %v, want %v", bindingNamespaces, watchedNamespaces)
			}
			leaderElection := findObject(t, objects, "Role", "bank-token-operator-leader-election-role")
			if leaderElection.GetNamespace() != operatorNamespace {
				t.Errorf("the leader election Role belongs in %s, not %s", operatorNamespace, leaderElection.GetNamespace())
			}
			want := "--watch-namespaces=" + strings.Join(watchedNamespaces, ",")
			if args := deploymentOf(t, objects).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, want) {
				t.Errorf("manager args %v lack %s", args, want)
			}
		})
	}
}

func TestHelmValuesReachTheManager(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   []string
		check func(t *testing.T, objects []*unstructured.Unstructured, d *appsv1.Deployment)
	}{{
		name: "image, replicas and log level",
		set:  []string{"manager.image.repository=registry.example/bto", "manager.image.tag=v1.2.3", "manager.replicas=2", "manager.logLevel=debug"},
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != "registry.example/bto:v1.2.3" || *d.Spec.Replicas != 2 || !slices.Contains(c.Args, "--zap-log-level=debug") {
				t.Errorf("image %s, replicas %d, args %v", c.Image, *d.Spec.Replicas, c.Args)
			}
		},
	}, {
		name: "proxy environment and pod annotations",
		set:  []string{"manager.env[0].name=HTTPS_PROXY", "manager.env[0].value=http://proxy.example:3128", "manager.podAnnotations.team=payments"},
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			// The operator's own namespace (the cluster connection namespace) and the container's
			// memory limit (the garbage collector's) first, then the values'.
			env := d.Spec.Template.Spec.Containers[0].Env
			if len(env) != 3 || env[0].Name != "POD_NAMESPACE" || env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil ||
				env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" ||
				env[1].Name != "MEMORY_LIMIT" || env[1].ValueFrom == nil || env[1].ValueFrom.ResourceFieldRef == nil ||
				env[1].ValueFrom.ResourceFieldRef.Resource != "limits.memory" || env[1].ValueFrom.ResourceFieldRef.ContainerName != "manager" ||
				env[2].Name != "HTTPS_PROXY" || env[2].Value != "http://proxy.example:3128" {
				t.Errorf("env %+v", env)
			}
			if d.Spec.Template.Annotations["team"] != "payments" || d.Spec.Template.Annotations["kubectl.kubernetes.io/default-container"] != "manager" {
				t.Errorf("pod annotations %v", d.Spec.Template.Annotations)
			}
		},
	}, {
		name: "endpoint limits and the credentials label",
		set: []string{"security.allowedEndpointCIDRs={203.0.113.0/24,2001:db8::/32}", "security.deniedEndpointCIDRs={203.0.113.128/25}",
			"security.allowedEndpointHosts={*.bank.example,token.other.example}", "security.credentialsLabelRequired=true"},
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			args := d.Spec.Template.Spec.Containers[0].Args
			for _, want := range []string{"--allowed-endpoint-cidrs=203.0.113.0/24,2001:db8::/32", "--denied-endpoint-cidrs=203.0.113.128/25",
				"--allowed-endpoint-hosts=*.bank.example,token.other.example", "--credentials-label-required"} {
				if !slices.Contains(args, want) {
					t.Errorf("args %v lack %s", args, want)
				}
			}
		},
	}, {
		name: "no endpoint limits and never loopback by default, and the credentials label required",
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			args := d.Spec.Template.Spec.Containers[0].Args
			for _, flag := range []string{"--allowed-endpoint-cidrs", "--denied-endpoint-cidrs", "--allowed-endpoint-hosts",
				"--allow-loopback-endpoints", "--allow-insecure-endpoints"} {
				if hasFlag(args, flag) {
					t.Errorf("args %v pass %s by default", args, flag)
				}
			}
			if !slices.Contains(args, "--credentials-label-required") {
				t.Errorf("args %v do not require the credentials label by default", args)
			}
		},
	}, {
		name: "bank connections: the cluster connection namespace and shared grants' timing",
		set: []string{"connections.clusterConnectionNamespace=bank-clients", "connections.sharedGrantGrace=10m",
			"connections.sharedGrantCopyAllowance=45s"},
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			args := d.Spec.Template.Spec.Containers[0].Args
			for _, want := range []string{"--cluster-connection-namespace=bank-clients", "--shared-grant-grace=10m",
				"--shared-grant-copy-allowance=45s"} {
				if !slices.Contains(args, want) {
					t.Errorf("args %v lack %s", args, want)
				}
			}
		},
	}, {
		name: "the cluster connection namespace defaults to the manager's own",
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			if args := d.Spec.Template.Spec.Containers[0].Args; hasFlag(args, "--cluster-connection-namespace") {
				t.Errorf("args %v name a cluster connection namespace by default (POD_NAMESPACE is the default)", args)
			}
		},
	}, {
		name: "the credentials label requirement turned off for a migration",
		set:  []string{"security.credentialsLabelRequired=false"},
		check: func(t *testing.T, _ []*unstructured.Unstructured, d *appsv1.Deployment) {
			if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--credentials-label-required=false") {
				t.Errorf("args %v do not turn the credentials label requirement off", args)
			}
		},
	}, {
		name: "leader election off drops its Role",
		set:  []string{"manager.leaderElection.enable=false"},
		check: func(t *testing.T, objects []*unstructured.Unstructured, d *appsv1.Deployment) {
			if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--leader-elect=false") {
				t.Errorf("args %v lack --leader-elect=false", args)
			}
			if roles := objectsOfKind(objects, "Role"); len(roles) != 0 {
				t.Errorf("no Role expected, got %s", objectKey(roles[0]))
			}
		},
	}, {
		name: "metrics off drops the Service and the endpoint",
		set:  []string{"metrics.enable=false"},
		check: func(t *testing.T, objects []*unstructured.Unstructured, d *appsv1.Deployment) {
			if services := objectsOfKind(objects, "Service"); len(services) != 0 {
				t.Errorf("no Service expected, got %s", objectKey(services[0]))
			}
			if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--metrics-bind-address=0") {
				t.Errorf("args %v lack --metrics-bind-address=0", args)
			}
		},
	}, {
		name: "a ServiceMonitor scrapes over the Service's TLS with Prometheus's token, verifying the given certificate",
		set:  []string{"prometheus.serviceMonitor.enabled=true", "metrics.certSecretName=metrics-tls"},
		check: func(t *testing.T, objects []*unstructured.Unstructured, d *appsv1.Deployment) {
			monitor := findObject(t, objects, "ServiceMonitor", "bank-token-operator-controller-manager-metrics-monitor")
			endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
			endpoint, _ := endpoints[0].(map[string]any)
			caSecret, _, _ := unstructured.NestedString(endpoint, "tlsConfig", "ca", "secret", "name")
			skip, _, _ := unstructured.NestedBool(endpoint, "tlsConfig", "insecureSkipVerify")
			if len(endpoints) != 1 || endpoint["scheme"] != "https" || endpoint["port"] != "metrics" ||
				endpoint["bearerTokenFile"] == nil || caSecret != "metrics-tls" || skip {
				t.Errorf("ServiceMonitor endpoints %v", endpoints)
			}
			pod := d.Spec.Template.Spec
			if !slices.Contains(pod.Containers[0].Args, "--metrics-cert-path=/tmp/k8s-metrics-server/metrics-certs") ||
				len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "metrics-tls" {
				t.Errorf("the manager does not serve the certificate Secret: args %v, volumes %+v", pod.Containers[0].Args, pod.Volumes)
			}
		},
	}, {
		name: "plain HTTP metrics need no authentication roles",
		set:  []string{"metrics.secure=false"},
		check: func(t *testing.T, objects []*unstructured.Unstructured, d *appsv1.Deployment) {
			if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--metrics-secure=false") {
				t.Errorf("args %v lack --metrics-secure=false", args)
			}
			for _, role := range objectsOfKind(objects, "ClusterRole") {
				if strings.Contains(role.GetName(), "metrics") {
					t.Errorf("%s installed for plain HTTP metrics", objectKey(role))
				}
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			objects := decodeObjects(t, helmTemplate(t, tc.set...))
			tc.check(t, objects, deploymentOf(t, objects))
		})
	}
}

func TestHelmRefusesInvalidWatchNamespaces(t *testing.T) {
	for _, value := range []string{"watchNamespaces={payments,payments}", "watchNamespaces={Payments}"} {
		if _, err := renderChart(value); err == nil {
			t.Errorf("helm template --set %s succeeded, want a failure", value)
		}
	}
}

func TestHelmLintPasses(t *testing.T) {
	for _, set := range [][]string{nil, {"watchNamespaces={" + strings.Join(watchedNamespaces, ",") + "}"}} {
		if err := lintChart(set...); err != nil {
			t.Errorf("helm lint --strict %s --set %v:\n%v", chartDir, set, err)
		}
	}
}

// forEachInstallRendering runs check, as a subtest, on the manifests of each way to install
// the operator that renders a Deployment: dist/install.yaml and the Helm chart.
func forEachInstallRendering(t *testing.T, check func(t *testing.T, manifests []byte)) {
	for source, manifests := range map[string][]byte{
		"dist/install.yaml": readRepoFile(t, "dist/install.yaml"),
		"helm template":     helmTemplate(t),
	} {
		t.Run(source, func(t *testing.T) { check(t, manifests) })
	}
}

func deploymentOf(t *testing.T, objects []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	fromUnstructured(t, findObject(t, objects, "Deployment", deploymentName), d)
	return d
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatalf("%s: %v", objectKey(o), err)
	}
}

func rulesOf(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	role := &rbacv1.Role{}
	fromUnstructured(t, o, role)
	return role.Rules
}

func clusterRoleRules(t *testing.T, manifest []byte) []rbacv1.PolicyRule {
	t.Helper()
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(manifest, role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	return role.Rules
}

func objectKeys(objects []*unstructured.Unstructured) []string {
	keys := make([]string, 0, len(objects))
	for _, o := range objects {
		keys = append(keys, objectKey(o))
	}
	slices.Sort(keys)
	return keys
}

func hasFlag(args []string, flag string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
}

func firstDifference(want, got []byte) string {
	wantLines, gotLines := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wantLines), len(gotLines)); i++ {
		var w, g string
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if w != g {
			return fmt.Sprintf("first difference at line %d:\n  committed: %q\n  built:     %q", i+1, w, g)
		}
	}
	return ""
}
