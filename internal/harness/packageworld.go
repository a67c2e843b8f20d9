package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// PackageWorld is one control plane and one manager binary that a test package's tests
// share; each test starts the manager processes it needs from ManagerBinary.
type PackageWorld struct {
	ControlPlane  *ControlPlane
	ManagerBinary string
	// Dir is a temporary directory for the package's kubeconfig, binary and logs.
	Dir string
}

// RunPackage builds the manager and starts a control plane whose manager user is
// name+"-manager", runs the package's tests with them, and stops and removes both: what a
// TestMain of a package that runs the manager binary does. It returns m.Run's exit code.
func RunPackage(m *testing.M, name string, world *PackageWorld) (int, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return 1, errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or `make setup-envtest` and export what it prints")
	}
	dir, err := os.MkdirTemp("", "bank-token-"+name+"-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	world.Dir = dir
	root, err := RepoRoot()
	if err != nil {
		return 1, err
	}
	// Not bin/manager: bin/ may be shared with other checkouts running make demo.
	world.ManagerBinary = filepath.Join(dir, "manager")
	if err := BuildManager(root, world.ManagerBinary); err != nil {
		return 1, fmt.Errorf("building the manager: %w", err)
	}
	world.ControlPlane, err = StartControlPlane(ControlPlaneOptions{
		KubeconfigPath: filepath.Join(dir, "kubeconfig"),
		KubeconfigUser: name + "-manager",
	})
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := world.ControlPlane.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	return m.Run(), nil
}
