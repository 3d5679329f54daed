package directio

import (
	"os"
	"strconv"
	"syscall"
)

// Flag is the open flag that asks for direct I/O, 0 where there is none.
const Flag = syscall.O_DIRECT

// reopenDirect opens f's file once more, with O_DIRECT and f's access mode,
// through /proc so that it is the same file whatever happened to its path.
// It bears f's name, so that its errors name the file, not /proc.
func reopenDirect(f *os.File) *os.File {
	fl, err := fcntlGetfl(f)
	if err != nil {
		return nil
	}
	fd, err := syscall.Open("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), fl&syscall.O_ACCMODE|syscall.O_CLOEXEC|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), f.Name())
}

func fcntlGetfl(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fl int
	var ferr error
	if err := sc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		fl = int(r)
		if e != 0 {
			ferr = e
		}
	}); err != nil {
		return 0, err
	}
	return fl, ferr
}
