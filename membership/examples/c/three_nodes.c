/* Three sgmp nodes in one process on 127.0.0.1: wait until all see the same
 * three-member view, print every view change, check that every node reads every
 * member's tags (set before start with sgmp_node_set_tag) and sees one member's tag
 * change, make one leave gracefully and check that the other two install a view
 * without it. Events are awaited with poll() on each
 * node's event descriptor (sgmp_node_event_fd). Exits 0 on success, 1 on failure;
 * every wait is bounded. Built and run by `make c-example` (part of `make test`). */
#define _POSIX_C_SOURCE 199309L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sgmp.h"

#define N 3
/* Timeouts are multiplied by $SGMP_TIME_SCALE (e.g. 10 under valgrind, which runs
 * the program tens of times slower). */
static int scale = 1;
#define DEADLINE_S (20 * scale)

static sgmp_node_t nodes[N];
static int fds[N];
static const char *names[N] = {"c-alpha", "c-beta", "c-gamma"};

static int check(sgmp_status s, const char *what) {
    if (s != SGMP_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, sgmp_status_str(s), sgmp_last_error());
        return 0;
    }
    return 1;
}

/* The application state handed to joiners. */
static size_t snapshot(void *user, uint8_t *buf, size_t cap) {
    const char *state = (const char *)user;
    size_t n = strlen(state);
    if (n > cap) n = cap;
    memcpy(buf, state, n);
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints node i's waiting events (view changes, joins, system views) without
 * blocking: sgmp_node_next_event with timeout 0 until none is left, which also makes
 * the node's event descriptor unreadable until the next event. */
static void drain(int i, sgmp_event *ev) {
    while (sgmp_node_next_event(nodes[i], 0, ev) == SGMP_OK) {
        if (ev->kind == SGMP_EVENT_VIEW) {
            printf("%-8s view %llu:", names[i], (unsigned long long)ev->view.version);
            for (uint32_t m = 0; m < ev->view.size; m++) printf(" %s", ev->view.members[m]);
            printf("\n");
        } else if (ev->kind == SGMP_EVENT_JOINED) {
            printf("%-8s joined at version %llu with %llu bytes of state\n", names[i],
                   (unsigned long long)ev->version, (unsigned long long)ev->snapshot_len);
        } else if (ev->kind == SGMP_EVENT_SYSTEM_VIEW) {
            /* The membership service's system view (core + clients; no clients here). */
            char who[SGMP_PID_LEN];
            printf("%-8s system view %llu: %llu members", names[i],
                   (unsigned long long)ev->version, (unsigned long long)ev->system_size);
            for (uint32_t k = 0; k < ev->added; k++)
                if (sgmp_node_system_change(nodes[i], 0, k, who, sizeof who) == SGMP_OK)
                    printf(" +%s", who);
            for (uint32_t k = 0; k < ev->removed; k++)
                if (sgmp_node_system_change(nodes[i], 1, k, who, sizeof who) == SGMP_OK)
                    printf(" -%s", who);
            printf("\n");
        }
    }
}

/* Waits (at most 50 ms, scaled) until one of the first `n` nodes has events, and
 * prints them. */
static void wait_events(int n, sgmp_event *ev) {
    struct pollfd p[N];
    for (int i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    if (poll(p, (nfds_t)n, 50 * scale) <= 0) return;
    for (int i = 0; i < n; i++)
        if (p[i].revents & POLLIN) drain(i, ev);
}

/* True when every node reads, for every member of its view, the tag role = the
 * member's expected role (roles[j] for node j). */
static int tags_agree(const char *roles[N], char pids[N][SGMP_PID_LEN]) {
    char val[64];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (sgmp_node_member_tag(nodes[i], pids[j], "role", val, sizeof val) != SGMP_OK ||
                strcmp(val, roles[j]) != 0)
                return 0;
    return 1;
}

/* True when node i's current view has `size` members and does not contain `absent`. */
static int view_is(int i, uint32_t size, const char *absent, sgmp_view *v) {
    if (sgmp_node_view(nodes[i], v) != SGMP_OK || v->size != size) return 0;
    if (absent)
        for (uint32_t m = 0; m < v->size; m++)
            if (strncmp(v->members[m], absent, strlen(absent)) == 0) return 0;
    return 1;
}

int main(void) {
    static sgmp_event ev;
    static sgmp_view views[N];
    char toml[1024], seed[64] = "", pid[SGMP_PID_LEN];
    int ok = 1;
    const char *sc = getenv("SGMP_TIME_SCALE");
    if (sc && atoi(sc) > 0) scale = atoi(sc);

    for (int i = 0; i < N && ok; i++) {
        snprintf(toml, sizeof toml,
                 "id = \"%s\"\nlisten = \"127.0.0.1:0\"\nseeds = [%s%s%s]\n"
                 "heartbeat_ms = %d\nsuspect_ms = %d\nprotocol_timeout_ms = %d\n"
                 "coldstart_rounds = 2\ncoldstart_round_ms = %d\nleave_linger_ms = %d\n"
                 "join_retry_ms = %d\njoin_timeout_ms = %d\n",
                 names[i], seed[0] ? "\"" : "", seed, seed[0] ? "\"" : "", 20 * scale,
                 300 * scale, 600 * scale, 50 * scale, 300 * scale, 300 * scale, 5000 * scale);
        /* The snapshot provider is set before start: a joiner that arrives at once
         * still gets the state. */
        ok = check(sgmp_node_new(toml, &nodes[i]), "sgmp_node_new") &&
             check(sgmp_node_set_snapshot_provider(nodes[i], snapshot, "demo-state"),
                   "sgmp_node_set_snapshot_provider") &&
             /* Member tags, set before start: carried in the join, agreed in views. */
             check(sgmp_node_set_tag(nodes[i], "role", i == 0 ? "db" : "web"),
                   "sgmp_node_set_tag") &&
             check(sgmp_node_start(nodes[i]), "sgmp_node_start") &&
             check(sgmp_node_event_fd(nodes[i], &fds[i]), "sgmp_node_event_fd");
        if (ok && i == 0) {
            ok = check(sgmp_node_local_addr(nodes[0], seed, sizeof seed), "sgmp_node_local_addr");
            /* Let the first node found the group before the others look for it. */
            double t = now_s();
            while (ok && !view_is(0, 1, NULL, &views[0]) && now_s() - t < DEADLINE_S)
                wait_events(1, &ev);
        }
    }

    /* Everyone sees the same three-member view. */
    double start = now_s();
    int all = 0;
    while (ok && !all && now_s() - start < DEADLINE_S) {
        wait_events(N, &ev);
        all = 1;
        for (int i = 0; i < N; i++)
            all &= view_is(i, N, NULL, &views[i]) && views[i].version == views[0].version;
    }
    if (ok && !all) {
        fprintf(stderr, "FAIL: the three nodes did not agree on a three-member view\n");
        ok = 0;
    }
    if (ok) printf("all %d nodes agree on view %llu\n", N, (unsigned long long)views[0].version);

    /* Every node reads every member's tags; then c-beta changes its role (a view
     * change through the mgr) and every node sees the new value. */
    static char pids[N][SGMP_PID_LEN];
    for (int i = 0; i < N && ok; i++)
        ok = check(sgmp_node_id(nodes[i], pids[i], SGMP_PID_LEN), "sgmp_node_id");
    const char *roles[N] = {"db", "web", "web"};
    for (int round = 0; round < 2 && ok; round++) {
        if (round == 1) {
            roles[1] = "cache";
            ok = check(sgmp_node_set_tag(nodes[1], "role", "cache"), "sgmp_node_set_tag");
        }
        start = now_s();
        while (ok && !tags_agree(roles, pids) && now_s() - start < DEADLINE_S)
            wait_events(N, &ev);
        if (ok && !tags_agree(roles, pids)) {
            fprintf(stderr, "FAIL: the nodes did not agree on the tags (round %d)\n", round);
            ok = 0;
        }
    }
    if (ok) {
        char key[80], val[64];
        printf("tags of %s:", pids[1]);
        for (uint32_t t = 0;
             sgmp_node_member_tag_at(nodes[0], pids[1], t, key, sizeof key, val, sizeof val) ==
             SGMP_OK;
             t++)
            printf(" %s=%s", key, val);
        printf(" (the same at every node)\n");
    }

    /* The last node leaves; the other two must install a view without it. */
    if (ok) ok = check(sgmp_node_id(nodes[2], pid, sizeof pid), "sgmp_node_id");
    if (ok) ok = check(sgmp_node_leave(nodes[2], 2000 * scale), "sgmp_node_leave");
    start = now_s();
    all = 0;
    while (ok && !all && now_s() - start < DEADLINE_S) {
        wait_events(2, &ev);
        all = 1;
        for (int i = 0; i < 2; i++) all &= view_is(i, 2, pid, &views[i]);
    }
    if (ok && !all) {
        fprintf(stderr, "FAIL: the others did not remove %s\n", pid);
        ok = 0;
    }
    if (ok) printf("%s left; the others agree on view %llu\n", pid, (unsigned long long)views[0].version);

    /* A freed handle is an error, not a crash. */
    for (int i = 0; i < N; i++) sgmp_node_free(nodes[i]);
    if (sgmp_node_view(nodes[0], &views[0]) != SGMP_ERR_BAD_HANDLE) {
        fprintf(stderr, "FAIL: a freed handle was accepted\n");
        ok = 0;
    }
    printf(ok ? "OK\n" : "FAILED\n");
    return ok ? 0 : 1;
}
