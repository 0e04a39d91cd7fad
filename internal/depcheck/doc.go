// Package depcheck holds no code, only a test: it enforces the dependency
// rules of DESIGN.md ("Dependency rules") on the import graph that
// `go list -deps` reports, and fails naming the import chain that breaks a
// rule. The rules cover the program's packages, not their tests. To add a
// rule, add a row to the rules table in depcheck_test.go.
package depcheck
