/* SPDX-License-Identifier: GPL-3.0-or-later
 *
 * uml-xstate: preloaded into linux.uml by scripts/uml-run (which builds it).
 *
 * User-Mode Linux runs each guest process as a host process and switches
 * registers with ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE).
 * Debian's UML 6.1 sizes that buffer once, for x87, SSE, AVX and AVX-512
 * (2696 bytes). The host kernel takes PTRACE_SETREGSET only with its CPU's
 * whole XSAVE area and fails it with EFAULT otherwise, so on a CPU with
 * more state (AMX: 11008 bytes) the guest's first process dies with
 * "userspace - ptrace set fp regs failed, errno = 14" and the kernel panics.
 *
 * This wraps ptrace(): those two calls reach the kernel with a buffer of
 * the full size, and UML's buffer gets (or gives) the first part of it.
 * The rest is kept per UML buffer, which is per guest task, so each task
 * gets its own state back. Everything else passes through unchanged, and
 * where UML's buffer is already large enough nothing is changed at all.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

struct saved {
    const void *owner;          /* UML's buffer */
    struct saved *next;
    unsigned char area[];       /* the whole XSAVE area: full_size bytes */
};

#define BUCKETS 4096
static struct saved *table[BUCKETS];
static size_t full_size;        /* the host's NT_X86_XSTATE size; 0 while unknown */
static ptrace_fn real_ptrace;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct saved *saved_for(const void *owner)
{
    size_t bucket = ((uintptr_t)owner >> 4) % BUCKETS;
    struct saved *s;

    for (s = table[bucket]; s; s = s->next)
        if (s->owner == owner)
            return s;
    s = calloc(1, sizeof(*s) + full_size);
    if (!s)
        return NULL;
    s->owner = owner;
    s->next = table[bucket];
    table[bucket] = s;
    return s;
}

/* The kernel shortens iov_len to the size it has. */
static void learn_full_size(pid_t pid)
{
    static unsigned char probe[1 << 16];
    struct iovec iov = { probe, sizeof(probe) };

    if (real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0)
        full_size = iov.iov_len;
}

static long xstate(enum __ptrace_request request, pid_t pid, struct iovec *uml)
{
    struct iovec full;
    struct saved *s;
    long ret;

    if (!full_size)
        learn_full_size(pid);
    if (!full_size || uml->iov_len >= full_size || !(s = saved_for(uml->iov_base)))
        return real_ptrace(request, pid, (void *)NT_X86_XSTATE, uml);
    full.iov_base = s->area;
    full.iov_len = full_size;
    if (request == PTRACE_GETREGSET) {
        ret = real_ptrace(request, pid, (void *)NT_X86_XSTATE, &full);
        if (ret == 0)
            memcpy(uml->iov_base, s->area, uml->iov_len);
        return ret;
    }
    memcpy(s->area, uml->iov_base, uml->iov_len);
    return real_ptrace(request, pid, (void *)NT_X86_XSTATE, &full);
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    pid_t pid;
    void *addr, *data;
    long ret;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);
    if (!real_ptrace)
        real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    if ((request != PTRACE_GETREGSET && request != PTRACE_SETREGSET)
        || (uintptr_t)addr != NT_X86_XSTATE || !data)
        return real_ptrace(request, pid, addr, data);
    pthread_mutex_lock(&lock);
    ret = xstate(request, pid, data);
    pthread_mutex_unlock(&lock);
    return ret;
}
