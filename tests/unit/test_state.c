/* The sandbox state machine (engine/state.c), driven from its own table:
 * every change in the table is taken, every other refused (the state kept,
 * or an abort where strict), every state reachable from creating, the states
 * at rest left only by a start; plus sequences written out by hand, as the
 * engine makes them, so that a row lost from the table fails here. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "../../engine/context.h"
#include "../../engine/lifecycle.h"
#include "../../engine/sandbox.h"
#include "unit.h"

/* The engine under test (engine_new; started piece by piece below). */
static struct engine *eng;

static int notified; /* engine_notify calls: the FUSE layer's watcher */

static void watch_hook(uint64_t id, bool gone)
{
	(void)id;
	(void)gone;
	notified++;
}

static struct sbx *new_sbx(void)
{
	struct sbx_config c;
	ctl_config_defaults(&c, "ns", false);
	return sbx_alloc(eng, "t1", &c);
}

/* The table's rows, expanded: in[from][to][ev]. */
static bool in_table[SBX_NSTATES][SBX_NSTATES][SBX_NEVENTS];

static void expand_table(void)
{
	memset(in_table, 0, sizeof(in_table));
	for (size_t i = 0; i < sbx_ntransitions; i++)
		for (int f = 0; f < SBX_NSTATES; f++)
			if (sbx_transitions[i].from & (1u << f))
				in_table[f][sbx_transitions[i].to][sbx_transitions[i].ev] = true;
}

/* The table is well formed: states and events in range, no empty row, every
 * event named and used. */
static void test_table_sane(void)
{
	bool used[SBX_NEVENTS] = {false};
	for (size_t i = 0; i < sbx_ntransitions; i++) {
		const struct sbx_transition *t = &sbx_transitions[i];
		CHECK((int)t->ev >= 0 && t->ev < SBX_NEVENTS);
		CHECK((int)t->to >= 0 && t->to < SBX_NSTATES);
		CHECK(t->from != 0 && t->from < (1u << SBX_NSTATES));
		CHECK(!(t->from & (1u << t->to))); /* a change changes the state */
		if (t->ev < SBX_NEVENTS)
			used[t->ev] = true;
	}
	for (int ev = 0; ev < SBX_NEVENTS; ev++) {
		CHECK(used[ev]);
		CHECK(strcmp(sbx_event_name(ev), "unknown") != 0);
	}
	for (int st = 0; st < SBX_NSTATES; st++)
		CHECK(strcmp(sbx_state_name(st), "unknown") != 0);
	CHECK(strcmp(sbx_state_name(SBX_STOPPING), "running") == 0); /* what status shows */
	CHECK(strcmp(sbx_state_name(SBX_NSTATES), "unknown") == 0);
	CHECK(strcmp(sbx_state_name(-1), "unknown") == 0);
}

/* Every (from, to, event) in the table is accepted by sbx_set_state, every
 * other refused with EINVAL and the state kept. */
static void test_every_pair(void)
{
	struct sbx *s = new_sbx();
	CHECK(s != NULL);
	if (!s)
		return;
	bool strict = sbx_state_strict;
	sbx_state_strict = false;
	int accepted = 0, refused = 0;
	log_init(LOG_LVL_ERR - 1, false); /* a refusal logs an error: hundreds here */
	pthread_mutex_lock(&s->lock);
	for (int f = 0; f < SBX_NSTATES; f++)
		for (int to = 0; to < SBX_NSTATES; to++)
			for (int ev = 0; ev < SBX_NEVENTS; ev++) {
				bool want = in_table[f][to][ev];
				CHECK(sbx_transition_allowed(f, to, ev) == want);
				sbx_state_init(s, f);
				int r = sbx_set_state(s, to, ev);
				CHECK(r == (want ? 0 : -EINVAL));
				CHECK(atomic_load(&s->state) == (want ? to : f));
				*(want ? &accepted : &refused) += 1;
			}
	pthread_mutex_unlock(&s->lock);
	log_init(LOG_LVL_INFO, false);
	sbx_state_strict = strict;
	CHECK(accepted > 0 && refused > 0);
	CHECK(!sbx_transition_allowed(-1, SBX_RUNNING, SBX_EV_STARTED));
	CHECK(!sbx_transition_allowed(SBX_NSTATES, SBX_RUNNING, SBX_EV_STARTED));
	sbx_put(s);
}

/* Strict (sanitizer builds, these tests): a change the table lacks aborts. */
static void test_strict_aborts(void)
{
	CHECK(sbx_state_strict); /* the unit tests are built with ASan */
	pid_t pid = fork();
	if (pid == 0) {
		struct sbx *s = new_sbx();
		sbx_state_strict = true;
		if (s)
			sbx_set_state(s, SBX_PAUSED, SBX_EV_PAUSE); /* creating -> paused */
		_exit(0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* Every state can be reached from creating, and every state reaches rest. */
static void test_reachable(void)
{
	unsigned seen = 1u << SBX_CREATING;
	for (bool grew = true; grew;) {
		grew = false;
		for (int f = 0; f < SBX_NSTATES; f++)
			for (int to = 0; to < SBX_NSTATES; to++)
				for (int ev = 0; ev < SBX_NEVENTS; ev++)
					if ((seen & (1u << f)) && in_table[f][to][ev] &&
					    !(seen & (1u << to))) {
						seen |= 1u << to;
						grew = true;
					}
	}
	CHECK(seen == (1u << SBX_NSTATES) - 1);
	for (int st = 0; st < SBX_NSTATES; st++) {
		unsigned reach = 1u << st;
		for (int round = 0; round < SBX_NSTATES; round++)
			for (int f = 0; f < SBX_NSTATES; f++)
				for (int to = 0; to < SBX_NSTATES; to++)
					for (int ev = 0; ev < SBX_NEVENTS; ev++)
						if ((reach & (1u << f)) && in_table[f][to][ev])
							reach |= 1u << to;
		bool rests = false;
		for (int r = 0; r < SBX_NSTATES; r++)
			rests |= sbx_state_at_rest(r) && (reach & (1u << r));
		CHECK(rests);
	}
}

/* The final states (init gone: stopped, failed, standby) are left only by a
 * start, which makes the sandbox again; nothing else leaves them. */
static void test_rest_final(void)
{
	int nrest = 0;
	for (int f = 0; f < SBX_NSTATES; f++) {
		if (!sbx_state_at_rest(f))
			continue;
		nrest++;
		for (int to = 0; to < SBX_NSTATES; to++)
			for (int ev = 0; ev < SBX_NEVENTS; ev++)
				if (in_table[f][to][ev])
					CHECK(ev == SBX_EV_START && to == SBX_CREATING);
		CHECK(in_table[f][SBX_CREATING][SBX_EV_START]);
	}
	CHECK(nrest == 3);
	CHECK(!sbx_state_at_rest(SBX_CREATING) && !sbx_state_at_rest(SBX_RUNNING) &&
	      !sbx_state_at_rest(SBX_PAUSED) && !sbx_state_at_rest(SBX_STOPPING));
}

struct step {
	int to;
	enum sbx_event ev;
	bool seen; /* a watcher is told (generation and notify) */
};

/* Runs a sequence from creating: each step taken, the generation and the
 * FUSE layer's watcher moved only for a change a watcher can see. */
static void run_steps(const struct step *st, size_t n)
{
	struct sbx *s = new_sbx();
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(atomic_load(&s->state) == SBX_CREATING);
	bool strict = sbx_state_strict;
	sbx_state_strict = false; /* a step the table lacks fails a CHECK, not the run */
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		uint64_t g = atomic_load(&s->generation);
		int before = notified;
		CHECK(sbx_set_state(s, st[i].to, st[i].ev) == 0);
		CHECK(atomic_load(&s->state) == st[i].to);
		CHECK(atomic_load(&s->generation) == g + st[i].seen);
		CHECK(notified == before + st[i].seen);
	}
	pthread_mutex_unlock(&s->lock);
	sbx_state_strict = strict;
	sbx_put(s);
}

static void test_create_run_stop(void)
{
	static const struct step st[] = {
		{SBX_RUNNING, SBX_EV_STARTED, true},
		{SBX_PAUSED, SBX_EV_PAUSE, true},
		{SBX_RUNNING, SBX_EV_RESUME, true},
		{SBX_STOPPING, SBX_EV_STOP, false}, /* still shows running */
		{SBX_STOPPED, SBX_EV_EXITED, true},
		{SBX_CREATING, SBX_EV_START, true},
		{SBX_RUNNING, SBX_EV_STARTED, true},
	};
	run_steps(st, ARRAY_SIZE(st));
}

static void test_failed_create(void)
{
	static const struct step st[] = {
		{SBX_FAILED, SBX_EV_START_FAILED, true},
		{SBX_CREATING, SBX_EV_START, true},
		{SBX_RUNNING, SBX_EV_STARTED, true},
		{SBX_FAILED, SBX_EV_CRASHED, true},
	};
	run_steps(st, ARRAY_SIZE(st));
}

static void test_standby(void)
{
	static const struct step st[] = {
		{SBX_RUNNING, SBX_EV_STARTED, true},
		{SBX_PAUSED, SBX_EV_PAUSE, true},
		{SBX_STOPPING, SBX_EV_STANDBY, false},
		{SBX_PAUSED, SBX_EV_STANDBY_FAILED, true}, /* as it was */
		{SBX_STOPPING, SBX_EV_STANDBY, false},
		{SBX_STANDBY, SBX_EV_SAVED, true},
		{SBX_CREATING, SBX_EV_START, true},
	};
	run_steps(st, ARRAY_SIZE(st));
}

/* A restarted daemon's journal: quiet changes, made before it serves anyone. */
static void test_restart(void)
{
	static const struct step readopt[] = {
		{SBX_RUNNING, SBX_EV_STARTED, true},
		{SBX_STOPPING, SBX_EV_STOP, false},
		{SBX_RUNNING, SBX_EV_READOPTED, false},
	};
	run_steps(readopt, ARRAY_SIZE(readopt));
	static const struct step cut[] = {{SBX_FAILED, SBX_EV_CUT_OFF, false}};
	run_steps(cut, ARRAY_SIZE(cut));
	static const struct step lost[] = {
		{SBX_RUNNING, SBX_EV_STARTED, true},
		{SBX_STOPPED, SBX_EV_LOST, false},
	};
	run_steps(lost, ARRAY_SIZE(lost));
}

/* Changes the engine never makes, written out: each refused. */
static void test_refused(void)
{
	static const struct {
		int from, to;
		enum sbx_event ev;
	} no[] = {
		{SBX_CREATING, SBX_STOPPED, SBX_EV_EXITED},   /* init not yet watched */
		{SBX_STOPPED, SBX_RUNNING, SBX_EV_STARTED},   /* a start goes through creating */
		{SBX_RUNNING, SBX_STANDBY, SBX_EV_SAVED},     /* only a stopping one is saved */
		{SBX_STOPPING, SBX_FAILED, SBX_EV_CRASHED},   /* a stop asked for ends stopped */
		{SBX_PAUSED, SBX_PAUSED, SBX_EV_PAUSE},
		{SBX_RUNNING, SBX_STOPPED, SBX_EV_STOP},      /* stop is stopping first */
		{SBX_FAILED, SBX_STOPPED, SBX_EV_LOST},
		{SBX_STOPPING, SBX_STOPPED, SBX_EV_STANDBY_FAILED},
	};
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		CHECK(!sbx_transition_allowed(no[i].from, no[i].to, no[i].ev));
	CHECK(sbx_transition_allowed(SBX_PAUSED, SBX_STOPPING, SBX_EV_STOP));
}

int main(void)
{
	char tmp[] = "/tmp/sbx-unit-state.XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	eng = engine_new();
	CHECK(eng != NULL);
	snprintf(eng->sandboxes_dir, sizeof(eng->sandboxes_dir), "%s", tmp);
	engine_thread_online();
	engine_set_watch(eng, watch_hook);
	expand_table();

	RUN(test_table_sane);
	RUN(test_every_pair);
	RUN(test_strict_aborts);
	RUN(test_reachable);
	RUN(test_rest_final);
	RUN(test_create_run_stop);
	RUN(test_failed_create);
	RUN(test_standby);
	RUN(test_restart);
	RUN(test_refused);

	urcu_memb_barrier();
	reg_thread_offline();
	rmdir(tmp);
	UNIT_DONE("state");
}
