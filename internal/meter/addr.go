package meter

import "unsafe"

// unsafeAddr returns the address of b's first byte (b is a live mapping
// that is never moved).
func unsafeAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
