package testsvc

import "syscall"

// sysProcAttr runs the child as cred (nil: the current user) and makes the
// kernel send it deathSig if the test binary dies without cleaning up (a
// panic, a -timeout, a SIGKILL), so no server outlives the tests.
func sysProcAttr(cred *syscall.Credential, deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: deathSig}
}
