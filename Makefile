# SPDX-License-Identifier: GPL-2.0
#
# zcsend: out-of-tree Rust kernel module.
#
#   make                 build zcsend.ko against $(KDIR) (default: the cached
#                        test kernel, built on first use)
#   make run             build everything, boot the guest, show the sample
#   make check           build everything, boot the guest, run the selftests
#   make bench           benchmark zcsend against its peers (TCG and UML)
#   make clean
#
# KDIR may point at any Rust-enabled 7.2 build tree (with Module.symvers).

LLVM ?= -19
export LLVM

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

HERE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# Lazily evaluated: only targets that need a kernel build one.
KDIR ?= $(shell $(HERE)/scripts/kernel.sh x86 | tail -1)

.PHONY: all modules clean deps run check bench

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(HERE) LLVM=$(LLVM) $(if $(KRUSTFLAGS),KRUSTFLAGS="$(KRUSTFLAGS)") modules

deps:
	@$(HERE)/scripts/deps.sh

run: deps
	@$(HERE)/scripts/run.sh

check: deps
	@$(HERE)/scripts/check.sh

bench: deps
	@$(HERE)/scripts/bench.sh

clean:
	rm -rf $(HERE)/.build
	find $(HERE)/rust -name '*.o' -o -name '*.cmd' -o -name '*.rmeta' | xargs rm -f
	rm -f $(HERE)/*.ko $(HERE)/*.mod* $(HERE)/.*.cmd $(HERE)/Module.symvers $(HERE)/modules.order
	rm -f $(HERE)/rust/.*.cmd $(HERE)/rust/*.d

endif
