/* llmcache: the header every component table starts with.
 *
 * Backends, providers, key strategies and serializers are const tables of
 * functions that begin with an llmc_component. The registry (registry.h)
 * checks a table once, when it is registered, whoever registers it
 * (llmc_init for the built-ins, the application through llmc_register or
 * a typed llmc_register_*, the plugin loader): ABI major, struct_size at
 * least up to the last required member, a valid name, and the kind's own
 * rules (required functions, flags that need a function). A table that
 * fails any check is never registered, so code that finds a table through
 * the registry may call its required members without checking them.
 *
 * Optional members. Members are only ever appended to a table (see
 * LLMC_ABI_MINOR), so a table built against an older header is shorter
 * than the library's struct: the members past its struct_size do not
 * exist in its memory and must not be read. Every read of a member that
 * lies past a kind's required prefix goes through LLMC_HAS_MEMBER first:
 *
 *     if (LLMC_HAS_MEMBER(llmc_backend_ops, ops, ttl) && ops->ttl)
 *         st = ops->ttl(ctx, key, klen, &ttl_ms, &err);
 *
 * (the registry's checks of optional members use it too). */
#ifndef LLMCACHE_COMPONENT_H
#define LLMCACHE_COMPONENT_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llmc_component {
    uint16_t abi_major;   /* LLMC_ABI_MAJOR */
    uint16_t abi_minor;   /* LLMC_ABI_MINOR at build time */
    uint32_t struct_size; /* sizeof the whole table */
    const char *name;     /* registry name, case-insensitive */
    const char *description; /* one line, for `llmcache plugins` */
} llmc_component;

#define LLMC_COMPONENT_INIT(type, name_, desc_)                                \
    {LLMC_ABI_MAJOR, LLMC_ABI_MINOR, (uint32_t)sizeof(type), (name_), (desc_)}

/* Is `member` inside the table? `table` points to a `type` (a struct that
 * starts with `llmc_component hdr`); true when its hdr.struct_size covers
 * the whole member. Says nothing about the member's value: a covered
 * function pointer may still be NULL. Evaluates `table` twice; constant
 * time, no locking. */
#define LLMC_HAS_MEMBER(type, table, member)                                   \
    ((size_t)(table)->hdr.struct_size >=                                       \
     offsetof(type, member) + sizeof(((const type *)0)->member))

#ifdef __cplusplus
}
#endif
#endif
