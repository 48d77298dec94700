package meter

import "syscall"

type syscallSysProcAttr = syscall.SysProcAttr
