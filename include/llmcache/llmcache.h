/* llmcache: the umbrella header. Include this one. */
#ifndef LLMCACHE_H
#define LLMCACHE_H

#include "common.h"
#include "component.h"
#include "options.h"
#include "cache.h"
#include "lease.h"
#include "backend.h"
#include "entry.h"
#include "keys.h"
#include "registry.h"
#include "defaults.h"
#include "provider.h"
#include "call.h"
#include "client.h"
#include "savings.h"
#include "semantic.h"
#include "plugin.h"

#endif
