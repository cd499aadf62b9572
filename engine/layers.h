/* Layers' reference counts (layers.c): a layer's directory goes with its
 * last user. */
#ifndef SBX_LAYERS_H
#define SBX_LAYERS_H

struct engine;
struct sbx_config;

void layer_get(struct engine *eng, const char *id);
void layer_put(struct engine *eng, const char *id);
/* The references a sandbox holds on the layers it stacks on (c->lowers, and
 * c->flat once its chain was flattened): taken when it is made or adopted,
 * dropped when it goes. */
void sbx_layers_get(struct engine *eng, const struct sbx_config *c);
void sbx_layers_put(struct engine *eng, const struct sbx_config *c);

#endif
