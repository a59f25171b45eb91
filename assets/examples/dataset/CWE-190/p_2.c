#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Join the header and the body of a message that arrived in two parts; both lengths come from the wire. */
uint8_t *join_message(const uint8_t *header, uint16_t header_len,
                      const uint8_t *body, uint16_t body_len)
{
    size_t total = (size_t)header_len + (size_t)body_len;
    uint8_t *message = malloc(total);

    if (message == NULL)
        return NULL;
    memcpy(message, header, header_len);
    memcpy(message + header_len, body, body_len);
    return message;
}

int main(void)
{
    static uint8_t head[60000], rest[60000];
    size_t head_len = fread(head, 1, sizeof(head), stdin);
    size_t rest_len = fread(rest, 1, sizeof(rest), stdin);

    uint8_t *message = join_message(head, (uint16_t)head_len, rest, (uint16_t)rest_len);
    int ok = message != NULL;
    free(message);
    return ok ? 0 : 1;
}
