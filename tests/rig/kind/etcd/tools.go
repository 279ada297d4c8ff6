//go:build tools

// Wrapper module: builds etcd's server command from the published go.etcd.io/etcd/server/v3 module
// (its own go.mod replaces the sibling modules with ../api etc., which `go install` refuses).
package tools

import _ "go.etcd.io/etcd/server/v3"
