#include <stdio.h>
#include <stdlib.h>

struct session {
    char user[32];
    int token;
};

static struct session *current;

void login(const char *user, int token)
{
    current = malloc(sizeof *current);
    if (current == NULL)
        exit(1);
    snprintf(current->user, sizeof current->user, "%s", user);
    current->token = token;
}

void logout(void)
{
    free(current);
    current = NULL;
}

/* A request is allowed when it carries the token of the logged-in session. */
int is_authorised(int token)
{
    return current != NULL && current->token == token;
}

int main(void)
{
    login("alice", 4242);
    logout();
    puts(is_authorised(4242) ? "access granted" : "access denied");
    return 0;
}
