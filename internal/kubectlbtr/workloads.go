package kubectlbtr

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// podsUsingSecret names the Pods in namespace that read the Secret: as a volume, through a
// projected volume, or into environment variables. These are the workloads a broken token
// breaks.
func podsUsingSecret(ctx context.Context, c client.Client, namespace, secret string) ([]string, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing Pods in %s: %w", namespace, err)
	}
	names := []string{}
	for i := range pods.Items {
		if podUsesSecret(&pods.Items[i].Spec, secret) {
			names = append(names, pods.Items[i].Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func podUsesSecret(spec *corev1.PodSpec, secret string) bool {
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return true
		}
		if v.Projected != nil {
			for _, source := range v.Projected.Sources {
				if source.Secret != nil && source.Secret.Name == secret {
					return true
				}
			}
		}
	}
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			if containerUsesSecret(&containers[i], secret) {
				return true
			}
		}
	}
	return false
}

func containerUsesSecret(container *corev1.Container, secret string) bool {
	for _, from := range container.EnvFrom {
		if from.SecretRef != nil && from.SecretRef.Name == secret {
			return true
		}
	}
	for _, env := range container.Env {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil && env.ValueFrom.SecretKeyRef.Name == secret {
			return true
		}
	}
	return false
}
