// The generated skeleton of bpf/pwru.bpf.c. Its rodata struct names our ABI
// types, so the ABI header must come first: include this, never the .skel.h.
#pragma once

#include "pwru_abi.h"
#include "pwru.skel.h"
