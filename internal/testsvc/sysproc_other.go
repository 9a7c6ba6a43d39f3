//go:build unix && !linux

package testsvc

import "syscall"

// sysProcAttr runs the child as cred (nil: the current user). Outside Linux
// there is no parent-death signal, so only t.Cleanup and Main stop servers.
func sysProcAttr(cred *syscall.Credential, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
