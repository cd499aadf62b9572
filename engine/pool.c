/* A fixed pool of worker threads for the heavy part of create and start, so
 * mkdir returns at once and bursts run in parallel. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "pool.h"
#include "sandbox.h"

struct job {
	void (*fn)(void *);
	void *arg;
	struct job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static bool quit;
static pthread_t *threads;
static int nthreads;

static void *worker(void *arg)
{
	(void)arg;
	engine_thread_online();
	pthread_mutex_lock(&lock);
	for (;;) {
		while (!head && !quit)
			pthread_cond_wait(&cond, &lock);
		if (!head)
			break;
		struct job *j = head;
		head = j->next;
		if (!head)
			tail = NULL;
		pthread_mutex_unlock(&lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	reg_thread_offline();
	return NULL;
}

int pool_start(int workers)
{
	threads = calloc((size_t)workers, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	for (nthreads = 0; nthreads < workers; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, worker, NULL) != 0)
			return nthreads ? 0 : -EAGAIN;
	return 0;
}

/* Runs what is queued, then joins the workers. */
void pool_stop(void)
{
	pthread_mutex_lock(&lock);
	quit = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
	nthreads = 0;
}

int pool_submit(void (*fn)(void *), void *arg)
{
	struct job *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&lock);
	if (quit) {
		pthread_mutex_unlock(&lock);
		free(j);
		return -ESHUTDOWN;
	}
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	return 0;
}
