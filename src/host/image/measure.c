/* placeholder: being written */
typedef int spm_placeholder_t;
