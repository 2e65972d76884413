/* "did you mean ...?" for misspelled keys and component names. */
#ifndef MSPT_SUGGEST_H
#define MSPT_SUGGEST_H

#include <stddef.h>

/* Edit distance (Damerau–Levenshtein, adjacent transpositions). */
size_t mspt_edit_distance(const char *a, const char *b);

/* Track the closest candidate to `word`; accepted only when the distance is
 * at most a third of the word's length (at least 1). */
typedef struct mspt_suggest {
    const char *word;
    const char *best;
    size_t dist;
} mspt_suggest;

void mspt_suggest_init(mspt_suggest *s, const char *word);
void mspt_suggest_offer(mspt_suggest *s, const char *candidate);
/* The best candidate, or NULL when nothing is close. */
const char *mspt_suggest_best(const mspt_suggest *s);

#endif
