/* Unit tests of the KVM probe (vmm/kvm.c) and the qemu backend's choice of
 * accelerator: a node that is not KVM, a missing node, the modes of --accel,
 * and what /sbx/stats says. /dev/kvm itself is probed when the host has it;
 * the outcome depends on the host, the sentence must be there either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/kvm.h"
#include "../../vmm/vmm.h"
#include "unit.h"


static void test_missing_node(void)
{
	struct err e = {0};
	CHECK(kvm_probe("/nonexistent/kvm", 2000, &e) == -ENOENT);
	CHECK(strstr(e.msg, "no /nonexistent/kvm") != NULL);
}

static void test_not_kvm(void)
{
	struct err e = {0};
	CHECK(kvm_probe("/dev/null", 2000, &e) == -ENODEV);
	CHECK(strstr(e.msg, "KVM_GET_API_VERSION") != NULL);
}

static void test_host_kvm(void)
{
	struct err e = {0};
	int r = kvm_probe("/dev/kvm", 5000, &e);
	printf("# /dev/kvm: %s\n", r == 0 ? "a test guest ran" : e.msg);
	CHECK(r == 0 || (r < 0 && e.msg[0]));
}

static void test_accel_modes(void)
{
	struct err e = {0};
	struct buf b = {0};
	CHECK(vmm_qemu_accel_init("fast", &e) == -EINVAL);
	CHECK(strstr(e.msg, "auto, kvm or tcg") != NULL);
	CHECK(vmm_qemu_accel_init("tcg", &e) == 0);
	CHECK(vmm_qemu_ops.describe(&b) == 0);
	CHECK(strstr(b.data, "qemu_accel tcg\nqemu_accel_reason asked_tcg\n") != NULL);
	buf_free(&b);
	setenv("SANDBOXFS_KVM_DEV", "/dev/null", 1);
	err_clear(&e);
	CHECK(vmm_qemu_accel_init("kvm", &e) < 0);
	CHECK(strstr(e.msg, "KVM cannot run guests here") != NULL);
	CHECK(vmm_qemu_accel_init("auto", &e) == 0);
	CHECK(vmm_qemu_ops.describe(&b) == 0);
	CHECK(strstr(b.data, "qemu_accel tcg\nqemu_accel_reason probe_failed\n") != NULL);
	buf_free(&b);
	unsetenv("SANDBOXFS_KVM_DEV");
}

int main(void)
{
	RUN(test_missing_node);
	RUN(test_not_kvm);
	RUN(test_host_kvm);
	RUN(test_accel_modes);
	UNIT_DONE("kvm");
}
