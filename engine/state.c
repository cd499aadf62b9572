/* The sandbox state machine as one table: every change of a sandbox's state
 * is a row (event, the states it may come from, the state it goes to), and
 * goes through sbx_set_state, which refuses a change the table lacks. */
#include <stdio.h>

#include "journal.h"
#include "sandbox.h"

#define FROM(st) (1u << (st))
#define LIVE (FROM(SBX_RUNNING) | FROM(SBX_PAUSED))

/* What a state shows in `status` and `events`: stopping is still running. */
static const char *const state_names[SBX_NSTATES] = {
	[SBX_CREATING] = "creating", [SBX_RUNNING] = "running", [SBX_PAUSED] = "paused",
	[SBX_STANDBY] = "standby",   [SBX_STOPPED] = "stopped", [SBX_FAILED] = "failed",
	[SBX_STOPPING] = "running",
};

/* A quiet event changes nothing a watcher can see (stopping shows running),
 * or comes before the daemon serves anyone (a restart): waiters inside the
 * engine are woken, the generation and the FUSE layer's watchers are not. */
static const struct {
	const char *name;
	bool quiet;
} events[SBX_NEVENTS] = {
	[SBX_EV_STARTED] = {"started"},
	[SBX_EV_START_FAILED] = {"start failed"},
	[SBX_EV_START] = {"start"},
	[SBX_EV_PAUSE] = {"pause"},
	[SBX_EV_RESUME] = {"resume"},
	[SBX_EV_STOP] = {"stop", true},
	[SBX_EV_STANDBY] = {"standby", true},
	[SBX_EV_STANDBY_FAILED] = {"standby failed"},
	[SBX_EV_EXITED] = {"init ended"},
	[SBX_EV_CRASHED] = {"init failed"},
	[SBX_EV_SAVED] = {"saved"},
	[SBX_EV_READOPTED] = {"re-adopted", true},
	[SBX_EV_CUT_OFF] = {"create cut off", true},
	[SBX_EV_LOST] = {"ended while the daemon was away", true},
};

/* The machine. A new sandbox starts creating (sbx_alloc); a restarted
 * daemon's starts as its journal says (sbx_state_init), then settles it. */
const struct sbx_transition sbx_transitions[] = {
	/* a create's or start's work on a worker (start_job), or its queueing failed */
	{SBX_EV_STARTED, FROM(SBX_CREATING), SBX_RUNNING},
	{SBX_EV_START_FAILED, FROM(SBX_CREATING), SBX_FAILED},
	/* ctl start: from rest (sbx_start) */
	{SBX_EV_START, FROM(SBX_STOPPED) | FROM(SBX_FAILED) | FROM(SBX_STANDBY), SBX_CREATING},
	/* ctl pause, resume (the cgroup freezer, or the VM stopped) */
	{SBX_EV_PAUSE, FROM(SBX_RUNNING), SBX_PAUSED},
	{SBX_EV_RESUME, FROM(SBX_PAUSED), SBX_RUNNING},
	/* ctl stop, rmdir, a timeout; ctl standby: the backend ends init */
	{SBX_EV_STOP, LIVE, SBX_STOPPING},
	{SBX_EV_STANDBY, LIVE, SBX_STOPPING},
	/* a standby that saved nothing: the machine runs on as it was */
	{SBX_EV_STANDBY_FAILED, FROM(SBX_STOPPING), SBX_RUNNING},
	{SBX_EV_STANDBY_FAILED, FROM(SBX_STOPPING), SBX_PAUSED},
	/* init is gone (the monitor's handle_exit_locked): stopped, or failed when
	 * it ended on its own with a reason, or saved by a standby */
	{SBX_EV_EXITED, LIVE | FROM(SBX_STOPPING), SBX_STOPPED},
	{SBX_EV_CRASHED, LIVE, SBX_FAILED},
	{SBX_EV_SAVED, FROM(SBX_STOPPING), SBX_STANDBY},
	/* a restarted daemon settles its journal (journal.c, recover) */
	{SBX_EV_READOPTED, FROM(SBX_STOPPING), SBX_RUNNING},
	{SBX_EV_CUT_OFF, FROM(SBX_CREATING), SBX_FAILED},
	{SBX_EV_LOST, LIVE | FROM(SBX_STOPPING), SBX_STOPPED},
};
const size_t sbx_ntransitions = ARRAY_SIZE(sbx_transitions);

/* Sanitizer builds (the unit tests, make tsan) abort on a change the table
 * lacks, so a test finds it; the daemon logs it and keeps the state. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
bool sbx_state_strict = true;
#else
bool sbx_state_strict = false;
#endif

const char *sbx_state_name(int state)
{
	return state >= 0 && state < SBX_NSTATES ? state_names[state] : "unknown";
}

const char *sbx_event_name(enum sbx_event ev)
{
	return (int)ev >= 0 && ev < SBX_NEVENTS ? events[ev].name : "unknown";
}

bool sbx_state_at_rest(int state)
{
	return state == SBX_STOPPED || state == SBX_FAILED || state == SBX_STANDBY;
}

bool sbx_transition_allowed(int from, int to, enum sbx_event ev)
{
	if (from < 0 || from >= SBX_NSTATES)
		return false;
	for (size_t i = 0; i < sbx_ntransitions; i++) {
		const struct sbx_transition *t = &sbx_transitions[i];
		if (t->ev == ev && (int)t->to == to && (t->from & FROM(from)))
			return true;
	}
	return false;
}

void sbx_state_init(struct sbx *s, int state)
{
	if (state < 0 || state >= SBX_NSTATES) { /* journal_parse lets none through */
		log_err("sandbox %s: state %d is not a state; it is failed", s->node.name, state);
		state = SBX_FAILED;
	}
	atomic_store(&s->state, state);
}

int sbx_set_state(struct sbx *s, int to, enum sbx_event ev)
{
	int from = atomic_load(&s->state);
	if (!sbx_transition_allowed(from, to, ev)) {
		log_err("sandbox %s: no state change from %s to %s on '%s' in the state machine; "
			"it stays %s", s->node.name, journal_state_name(from), journal_state_name(to),
			sbx_event_name(ev), journal_state_name(from));
		if (sbx_state_strict)
			abort();
		return -EINVAL;
	}
	atomic_store(&s->state, to);
	pthread_cond_broadcast(&s->cond);
	log_debug("sandbox %s: %s -> %s (%s)", s->node.name, journal_state_name(from),
		  journal_state_name(to), sbx_event_name(ev));
	if (events[ev].quiet)
		return 0;
	atomic_fetch_add(&s->generation, 1);
	engine_notify(s->eng, s->node.id);
	return 0;
}
