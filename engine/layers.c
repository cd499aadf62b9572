/* Layers (STATE/layers/ID): immutable directories a sandbox's root stacks
 * on, reference counted by the sandboxes that stack on them and by named
 * snapshots (snap.c); a layer is removed when its last user goes. Below
 * both lifecycle.c and snap.c: it calls neither. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "layers.h"
#include "sandbox.h"

struct layer {
	char id[SBX_LAYER_ID_MAX];
	int refs;
	struct layer *next;
};

static struct layer *layer_find(struct engine *eng, const char *id)
{
	for (struct layer *l = eng->layers.list; l; l = l->next)
		if (strcmp(l->id, id) == 0)
			return l;
	return NULL;
}

void layer_get(struct engine *eng, const char *id)
{
	pthread_mutex_lock(&eng->layers.lock);
	struct layer *l = layer_find(eng, id);
	if (!l && (l = calloc(1, sizeof(*l)))) {
		snprintf(l->id, sizeof(l->id), "%s", id);
		l->next = eng->layers.list;
		eng->layers.list = l;
	}
	if (l)
		l->refs++;
	pthread_mutex_unlock(&eng->layers.lock);
}

static void layer_remove_dir(const char *id)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", vmm_host()->layers_dir, id);
	int r = vmm_remove_layer(dir);
	if (r < 0)
		log_warn("cannot remove layer %s: %s", dir, strerror(-r));
	else
		log_debug("layer %s removed (no user left)", id);
}

void layer_put(struct engine *eng, const char *id)
{
	bool gone = false;
	pthread_mutex_lock(&eng->layers.lock);
	for (struct layer **p = &eng->layers.list; *p; p = &(*p)->next) {
		struct layer *l = *p;
		if (strcmp(l->id, id) != 0)
			continue;
		if (--l->refs <= 0) {
			*p = l->next;
			free(l);
			gone = true;
		}
		break;
	}
	pthread_mutex_unlock(&eng->layers.lock);
	if (gone)
		layer_remove_dir(id);
}

void sbx_layers_get(struct engine *eng, const struct sbx_config *c)
{
	for (int i = 0; i < c->nlowers; i++)
		layer_get(eng, c->lowers[i]);
	if (c->flat[0])
		layer_get(eng, c->flat);
}

void sbx_layers_put(struct engine *eng, const struct sbx_config *c)
{
	for (int i = 0; i < c->nlowers; i++)
		layer_put(eng, c->lowers[i]);
	if (c->flat[0])
		layer_put(eng, c->flat);
}
