// Command bankmatrix writes the CRD's share of the bank matrix from the providers package's
// preset table, so that the two cannot drift: the enums of provider, grant type and client
// authentication (zz_generated.bankmatrix.go), BankTokenRequestSpec's and BankConnectionSpec's CEL rules for
// what each provider refuses, and HTTPHeader's and TokenRequestParameter's rules on reserved
// header and parameter names (the delimited blocks in banktokenrequest_types.go). Run by make manifests; hack/verify-generated.sh fails on
// stale output.
//
//	go run ./hack/bankmatrix [api-directory]
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"strings"
)

const (
	typesFile           = "banktokenrequest_types.go"
	connectionTypesFile = "bankconnection_types.go"
)

func main() {
	dir := "api/v1alpha1"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := run(dir); err != nil {
		fmt.Fprintln(os.Stderr, "bankmatrix:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	enums, err := format.Source([]byte(enumsFile()))
	if err != nil {
		return fmt.Errorf("formatting the enums: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zz_generated.bankmatrix.go"), enums, 0o644); err != nil {
		return err
	}
	blocks := map[string]map[string][]rule{
		typesFile:           {"spec-rules": specRules(), "header-rules": {reservedHeaderRule()}, "parameter-rules": {reservedParameterRule()}},
		connectionTypesFile: {"connection-rules": connectionRules()},
	}
	for file, rulesByBlock := range blocks {
		if err := rewriteBlocks(filepath.Join(dir, file), rulesByBlock); err != nil {
			return err
		}
	}
	return nil
}

func rewriteBlocks(path string, rulesByBlock map[string][]rule) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for block, rules := range rulesByBlock {
		if src, err = replaceBlock(src, block, rules); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return os.WriteFile(path, src, 0o644)
}

// replaceBlock rewrites the lines between the block's BEGIN and END comment lines. The block
// is a comment group of its own above a type's godoc, where controller-gen reads markers too.
func replaceBlock(src []byte, block string, rules []rule) ([]byte, error) {
	begin := []byte("// BEGIN bankmatrix " + block)
	end := []byte("// END bankmatrix " + block)
	i := bytes.Index(src, begin)
	j := bytes.Index(src, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("no block %q ... %q", begin, end)
	}
	var lines strings.Builder
	lines.WriteString(string(begin) + ": generated from internal/providers by make manifests; do not edit.\n")
	for _, r := range rules {
		lines.WriteString(r.marker() + "\n")
	}
	return append(append(append([]byte{}, src[:i]...), lines.String()...), src[j:]...), nil
}
