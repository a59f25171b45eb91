#include <stdio.h>
#include <stdlib.h>

struct job {
    int id;
    struct job *next;
};

/* Drop every finished job (odd ids, in this demo) from the queue and return the new head. */
struct job *drop_finished(struct job *head)
{
    struct job **link = &head;
    struct job *cur = head;
    while (cur != NULL) {
        if (cur->id % 2 == 1) {
            struct job *next = cur->next;
            *link = next;
            free(cur);
            cur = next;
        } else {
            link = &cur->next;
            cur = cur->next;
        }
    }
    return head;
}

int main(void)
{
    struct job *head = NULL;
    for (int i = 6; i > 0; i--) {
        struct job *job = malloc(sizeof *job);
        if (job == NULL)
            return 1;
        *job = (struct job){i, head};
        head = job;
    }
    for (head = drop_finished(head); head != NULL; head = head->next)
        printf("pending job %d\n", head->id);
    return 0;
}
