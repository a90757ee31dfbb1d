/* Linux x86-64 errno values for trusted code (no libc inside an enclave). */
#ifndef SPM_TRUSTED_ERRNO_H
#define SPM_TRUSTED_ERRNO_H
#define EPERM           1
#define ENOENT          2
#define EINTR           4
#define EIO             5
#define E2BIG           7
#define EBADF           9
#define EAGAIN          11
#define ENOMEM          12
#define EACCES          13
#define EFAULT          14
#define EBUSY           16
#define EEXIST          17
#define EINVAL          22
#define EFBIG           27
#define ENOSPC          28
#define EPIPE           32
#define ERANGE          34
#define EDEADLK         35
#define ENOSYS          38
#define ENODATA         61
#define ETIME           62
#define EPROTO          71
#define EBADMSG         74
#define EOVERFLOW       75
#define ENOTSUP         95
#define ECONNRESET      104
#define ENOTCONN        107
#define ESHUTDOWN       108
#define ETIMEDOUT       110
#define EALREADY        114
#define ESTALE          116
#define ECANCELED       125
#define EKEYREJECTED    129
#define ENOTRECOVERABLE 131
#endif
