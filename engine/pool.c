/* A fixed pool of worker threads for the heavy part of create and start, so
 * mkdir returns at once and bursts run in parallel. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "context.h"
#include "pool.h"
#include "sandbox.h"

struct pool_job {
	void (*fn)(void *);
	void *arg;
	struct pool_job *next;
};

static void *worker(void *arg)
{
	struct engine *eng = arg;
	engine_thread_online();
	pthread_mutex_lock(&eng->pool.lock);
	for (;;) {
		while (!eng->pool.head && !eng->pool.quit)
			pthread_cond_wait(&eng->pool.cond, &eng->pool.lock);
		if (!eng->pool.head)
			break;
		struct pool_job *j = eng->pool.head;
		eng->pool.head = j->next;
		if (!eng->pool.head)
			eng->pool.tail = NULL;
		pthread_mutex_unlock(&eng->pool.lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&eng->pool.lock);
	}
	pthread_mutex_unlock(&eng->pool.lock);
	reg_thread_offline();
	return NULL;
}

int pool_start(struct engine *eng, int workers)
{
	eng->pool.threads = calloc((size_t)workers, sizeof(*eng->pool.threads));
	if (!eng->pool.threads)
		return -ENOMEM;
	for (eng->pool.nthreads = 0; eng->pool.nthreads < workers; eng->pool.nthreads++)
		if (pthread_create(&eng->pool.threads[eng->pool.nthreads], NULL, worker, eng) != 0)
			return eng->pool.nthreads ? 0 : -EAGAIN;
	return 0;
}

/* Runs what is queued, then joins the workers. */
void pool_stop(struct engine *eng)
{
	pthread_mutex_lock(&eng->pool.lock);
	eng->pool.quit = true;
	pthread_cond_broadcast(&eng->pool.cond);
	pthread_mutex_unlock(&eng->pool.lock);
	for (int i = 0; i < eng->pool.nthreads; i++)
		pthread_join(eng->pool.threads[i], NULL);
	free(eng->pool.threads);
	eng->pool.threads = NULL;
	eng->pool.nthreads = 0;
}

int pool_submit(struct engine *eng, void (*fn)(void *), void *arg)
{
	struct pool_job *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&eng->pool.lock);
	if (eng->pool.quit) {
		pthread_mutex_unlock(&eng->pool.lock);
		free(j);
		return -ESHUTDOWN;
	}
	if (eng->pool.tail)
		eng->pool.tail->next = j;
	else
		eng->pool.head = j;
	eng->pool.tail = j;
	pthread_cond_signal(&eng->pool.cond);
	pthread_mutex_unlock(&eng->pool.lock);
	return 0;
}
