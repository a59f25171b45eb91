#include <stdio.h>

#define PLAYERS 8

/* Add points to a player's slot on the scoreboard. */
static void add_points(int *scores, int slot, int points)
{
    if (slot < 0 || slot >= PLAYERS) {
        fprintf(stderr, "no player in slot %d\n", slot);
        return;
    }
    scores[slot] += points;
}

/* Scoreboard: each "SLOT POINTS" line on stdin adds points to that player. */
int main(void)
{
    int scores[PLAYERS] = {0};
    int slot, points;

    while (scanf("%d %d", &slot, &points) == 2)
        add_points(scores, slot, points);
    for (int i = 0; i < PLAYERS; i++)
        printf("player %d: %d\n", i, scores[i]);
    return 0;
}
